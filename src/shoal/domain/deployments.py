"""Deployments: the record, its phases and the transitions between them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from shoal.core.errors import Conflict


class Phase(StrEnum):
    UNKNOWN = "UNKNOWN"
    PENDING_BUILD = "PENDING_BUILD"
    BUILDING = "BUILDING"
    PENDING_DEPLOY = "PENDING_DEPLOY"
    DEPLOYING = "DEPLOYING"
    ACTIVE = "ACTIVE"
    SUPERSEDED = "SUPERSEDED"
    ERROR = "ERROR"
    CANCELED = "CANCELED"


TERMINAL = frozenset({Phase.ACTIVE, Phase.SUPERSEDED, Phase.ERROR, Phase.CANCELED})
IN_PROGRESS = frozenset({Phase.BUILDING, Phase.PENDING_DEPLOY, Phase.DEPLOYING})

# Where each phase may go. ACTIVE → SUPERSEDED is the old deployment being replaced by a newer one.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.PENDING_BUILD: frozenset({Phase.BUILDING, Phase.PENDING_DEPLOY, Phase.SUPERSEDED, Phase.CANCELED,
                                    Phase.ERROR}),
    Phase.BUILDING: frozenset({Phase.PENDING_DEPLOY, Phase.ERROR, Phase.CANCELED, Phase.SUPERSEDED}),
    Phase.PENDING_DEPLOY: frozenset({Phase.DEPLOYING, Phase.ERROR, Phase.CANCELED, Phase.SUPERSEDED}),
    Phase.DEPLOYING: frozenset({Phase.ACTIVE, Phase.ERROR, Phase.CANCELED, Phase.SUPERSEDED}),
    Phase.ACTIVE: frozenset({Phase.SUPERSEDED}),
    Phase.SUPERSEDED: frozenset(),
    Phase.ERROR: frozenset(),
    Phase.CANCELED: frozenset(),
}

# cause_details.type values (also the deployment_types filter of the list endpoint).
MANUAL, MANUAL_ROLLBACK = "MANUAL", "MANUAL_ROLLBACK"
DEPLOYMENT_TYPES = frozenset({"MANUAL", "DEPLOY_ON_PUSH", "MAINTENANCE", "MANUAL_ROLLBACK", "AUTO_ROLLBACK",
                              "UPDATE_DATABASE_TRUSTED_SOURCES", "AUTOSCALED"})


@dataclass(frozen=True)
class Trigger:
    """Why a deployment exists: DigitalOcean's ``cause`` text and ``cause_details``."""

    cause: str
    type: str = MANUAL
    action: str = "CREATE_DEPLOYMENT"
    force_build: bool = False
    restart_components: tuple[str, ...] | None = None  # a restart: no build, only these components
    cloned_from: str | None = None


@dataclass(frozen=True)
class Deployment:
    id: str
    app_id: str
    account_id: str
    spec: dict[str, Any]
    phase: Phase
    phase_last_updated_at: datetime
    created_at: datetime
    updated_at: datetime
    cause: str
    cause_details: dict[str, Any]
    progress: list[dict[str, Any]]
    components: list[dict[str, Any]]
    previous_deployment_id: str | None = None
    cloned_from: str | None = None
    force_build: bool = False
    restart_components: list[str] | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    tier_slug: str = "basic"
    ended_reason: dict[str, str] | None = None
    version: int = 0  # bumped on every save; a stale writer loses (optimistic concurrency)

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL

    def moved_to(self, phase: Phase, now: datetime) -> Deployment:
        if phase == self.phase:
            return self
        if phase not in TRANSITIONS[self.phase]:
            raise Conflict(f"deployment {self.id} cannot go from {self.phase} to {phase}")
        return replace(self, phase=phase, phase_last_updated_at=now, updated_at=now)


class StepFailed(Exception):
    """A deployment step failed for a reason the user can act on; ``code`` is DigitalOcean's reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def reason(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
