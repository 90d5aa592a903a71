"""Job invocations: one run of a job, by a deployment (PRE/POST/FAILED_DEPLOY) or by its schedule."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, SKIPPED = (
    "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "SKIPPED")
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELED, SKIPPED})


@dataclass(frozen=True)
class JobInvocation:
    id: str
    app_id: str
    deployment_id: str
    job_name: str
    phase: str
    trigger: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None


def deploy_invocation_id(deployment_id: str, group: str, job_name: str) -> str:
    """Stable per deployment, step and job, so a step repeated after a crash records one invocation."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"shoal:job:{deployment_id}:{group}:{job_name}"))


def deployment_trigger(cause_details: dict[str, Any]) -> dict[str, Any]:
    """The trigger of a job a deployment runs (PRE/POST/FAILED_DEPLOY): MANUAL by the user whose
    action made the deployment, as godo's ``JobInvocationTrigger`` shows it; UNKNOWN when no user
    action caused it (godo's enum has nothing closer)."""
    user = (cause_details.get("digitalocean_user_action") or {}).get("user")
    if not user:
        return {"type": "UNKNOWN"}
    return {"type": "MANUAL", "manual": {"user": dict(user)}}


def new_invocation_id() -> str:
    return str(uuid.uuid4())


def next_run(cron: str, time_zone: str, after: datetime) -> datetime:
    """When a SCHEDULED job next runs after ``after``: its cron read in its own time zone (reference §4.6)."""
    local = after.astimezone(ZoneInfo(time_zone or "UTC"))
    following: datetime = croniter(cron, local).get_next(datetime)
    return following.astimezone(UTC)
