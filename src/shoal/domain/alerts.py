"""Alerts, as values: which rules a spec sets, when a deployment fires one, and how a firing's
deliveries stand.

A *firing* is one occurrence of a rule for one subject (a deployment, or a domain of a deployment);
its id is derived from the alert and the subject, so recording it twice is recording it once —
that is what makes "sent once per firing" hold across restarts. Each firing carries one delivery per
destination (an email address, a Slack webhook), retried on ``RETRY_DELAYS`` and then given up.

Rules and their meaning: do-runtime-reference.md §5.1. What DigitalOcean's messages say is
undocumented (§5.2); ours name the app, the component, the rule and a link.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shoal.domain.deployments import IN_PROGRESS, Deployment, Phase
from shoal.domain.plan import AppPlan
from shoal.domain.progress import leaves

DEPLOYMENT_FAILED, DEPLOYMENT_LIVE = "DEPLOYMENT_FAILED", "DEPLOYMENT_LIVE"
DEPLOYMENT_STARTED, DEPLOYMENT_CANCELED = "DEPLOYMENT_STARTED", "DEPLOYMENT_CANCELED"
DOMAIN_FAILED, DOMAIN_LIVE = "DOMAIN_FAILED", "DOMAIN_LIVE"
EVENT_RULES = (DEPLOYMENT_STARTED, DEPLOYMENT_LIVE, DEPLOYMENT_FAILED, DEPLOYMENT_CANCELED, DOMAIN_LIVE,
               DOMAIN_FAILED)
AUTOSCALE_SUCCEEDED, AUTOSCALE_FAILED = "AUTOSCALE_SUCCEEDED", "AUTOSCALE_FAILED"
JOB_INVOCATION_FAILED = "JOB_INVOCATION_FAILED"  # a job's alert: one firing per failed invocation
TITLES = {JOB_INVOCATION_FAILED: "Job invocation failed", DEPLOYMENT_STARTED: "Deployment started", DEPLOYMENT_LIVE: "Deployment live",
          DEPLOYMENT_FAILED: "Deployment failed", DEPLOYMENT_CANCELED: "Deployment canceled",
          DOMAIN_LIVE: "Domain live", DOMAIN_FAILED: "Domain failed", AUTOSCALE_SUCCEEDED: "Autoscaling succeeded",
          AUTOSCALE_FAILED: "Autoscaling failed", "CPU_UTILIZATION": "CPU utilization",
          "MEM_UTILIZATION": "Memory utilization", "RESTART_COUNT": "Restart count",
          "REQUESTS_PER_SECOND": "Requests per second", "REQUEST_DURATION_P95_MS": "Request duration (p95)",
          "FUNCTIONS_ACTIVATION_COUNT": "Function activations", "FUNCTIONS_ERROR_COUNT": "Function errors",
          "FUNCTIONS_AVERAGE_DURATION_MS": "Function duration", "FUNCTIONS_AVERAGE_WAIT_TIME_MS": "Function wait time",
          "FUNCTIONS_ERROR_RATE_PER_MINUTE": "Function error rate",
          "FUNCTIONS_GB_RATE_PER_SECOND": "Function GB-seconds rate"}

# Delivery states. UNDELIVERABLE: there is no way to send it (no SMTP server configured).
PENDING, SUCCESS, ERROR, UNDELIVERABLE = "PENDING", "SUCCESS", "ERROR", "UNDELIVERABLE"
EMAIL, SLACK = "email", "slack"
# Seconds before each retry; after the last, the delivery is given up (6 attempts over ~21 minutes).
RETRY_DELAYS = (5, 15, 60, 300, 900)


def alert_id(app_id: str, component: str, rule: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"shoal:alert:{app_id}:{component}:{rule}"))


@dataclass(frozen=True)
class Alert:
    id: str
    component: str  # "" for an app-level alert
    rule: str
    disabled: bool
    spec: dict[str, Any]
    operator: str | None = None  # metric rules: GREATER_THAN (the default) or LESS_THAN ...
    value: float | None = None  # ... this value ...
    window: str | None = None  # ... over this window (FIVE_MINUTES when unset)


def alerts_of(plan: AppPlan) -> list[Alert]:
    """Every alert the plan's spec sets: app-level ones first, then each component's."""
    rules = [*plan.alerts, *(rule for unit in plan.units for rule in unit.alerts)]
    return [Alert(alert_id(plan.app_id, r.component, r.rule), r.component, r.rule, r.disabled, dict(r.spec),
                  r.operator, r.value, r.window) for r in rules]


@dataclass(frozen=True)
class Occurrence:
    """A rule that a deployment's state makes true, for one subject."""

    rule: str
    subject: str  # the deployment id, ``<deployment id>/<domain>``, a scale event's id, a metric episode
    summary: str
    reason: str = ""
    resolved: bool = False  # a metric rule that held and no longer does


def job_failed(alerts: list[Alert], job: str, invocation_id: str, app_name: str,
               reason: str) -> list[tuple[Alert, Occurrence]]:
    """What a failed invocation of ``job`` fires: the job's enabled JOB_INVOCATION_FAILED alerts."""
    occurrence = Occurrence(JOB_INVOCATION_FAILED, invocation_id,
                            f"job {job} of {app_name} failed (job invocation {invocation_id})", reason)
    return [(a, occurrence) for a in alerts if a.rule == JOB_INVOCATION_FAILED and a.component == job
            and not a.disabled]


def _started(dep: Deployment) -> bool:
    if dep.phase in IN_PROGRESS or dep.phase in (Phase.ACTIVE, Phase.ERROR):
        return True
    return any(step.get("status") != PENDING for step in leaves(dep.progress))


def _went_live(dep: Deployment) -> bool:
    return dep.phase == Phase.ACTIVE or (dep.phase == Phase.SUPERSEDED and "_deploy_ended" in dep.timing)


def occurrences(dep: Deployment, plan: AppPlan, live_domains: set[str]) -> list[Occurrence]:
    """What ``dep`` (whose plan is ``plan``) fires, in the order it happened. ``live_domains``: the
    domains the app served before it (a domain is new, and can go live or fail, only if not among them)."""
    name = plan.app_name
    reason = f"{dep.ended_reason.get('code')}: {dep.ended_reason.get('message')}" if dep.ended_reason else ""
    found: list[Occurrence] = []
    if _started(dep):
        found.append(Occurrence(DEPLOYMENT_STARTED, dep.id, f"deployment {dep.id} of {name} started ({dep.cause})"))
    new_domains = [d.name for d in plan.domains if d.name not in live_domains]
    if _went_live(dep):
        found.append(Occurrence(DEPLOYMENT_LIVE, dep.id, f"deployment {dep.id} of {name} is live"))
        found += [Occurrence(DOMAIN_LIVE, f"{dep.id}/{d}", f"domain {d} of {name} is live") for d in new_domains]
    elif dep.phase == Phase.ERROR:
        found.append(Occurrence(DEPLOYMENT_FAILED, dep.id, f"deployment {dep.id} of {name} failed", reason))
        found += [Occurrence(DOMAIN_FAILED, f"{dep.id}/{d}", f"domain {d} of {name} could not be configured: "
                             f"the deployment serving it failed", reason) for d in new_domains]
    elif dep.phase == Phase.CANCELED:
        found.append(Occurrence(DEPLOYMENT_CANCELED, dep.id, f"deployment {dep.id} of {name} was canceled"))
    return found


@dataclass(frozen=True)
class Delivery:
    kind: str  # EMAIL or SLACK
    target: str  # the address, or the webhook URL
    channel: str = ""
    status: str = PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    last_error: str = ""

    @property
    def open(self) -> bool:
        return self.status == PENDING

    @property
    def shown_as(self) -> str:
        """How a progress step names it (a webhook URL is a credential: only its host is shown)."""
        if self.kind == EMAIL:
            return f"notify-email:{self.target}"
        host = self.target.split("://", 1)[-1].split("/", 1)[0]
        return f"notify-slack:{self.channel or host}"


def attempted(delivery: Delivery, now: datetime, error: str | None, permanent: bool = False) -> Delivery:
    """The delivery after one attempt: delivered, scheduled again, or given up."""
    attempts = delivery.attempts + 1
    started = delivery.started_at or now
    if error is None:
        return replace(delivery, status=SUCCESS, attempts=attempts, started_at=started, ended_at=now,
                       next_attempt_at=None, last_error="")
    if permanent or attempts > len(RETRY_DELAYS):
        return replace(delivery, status=ERROR, attempts=attempts, started_at=started, ended_at=now,
                       next_attempt_at=None, last_error=error)
    return replace(delivery, attempts=attempts, started_at=started, last_error=error,
                   next_attempt_at=now + timedelta(seconds=RETRY_DELAYS[attempts - 1]))


def undeliverable(kind: str, target: str, now: datetime, why: str) -> Delivery:
    return Delivery(kind, target, status=UNDELIVERABLE, started_at=now, ended_at=now, last_error=why)


@dataclass(frozen=True)
class Firing:
    id: str
    alert_id: str
    app_id: str
    component: str
    rule: str
    subject: str
    fired_at: datetime
    title: str
    text: str
    deliveries: tuple[Delivery, ...] = ()

    @property
    def next_attempt_at(self) -> datetime | None:
        due = [d.next_attempt_at or self.fired_at for d in self.deliveries if d.open]
        return min(due) if due else None

    @property
    def failed(self) -> bool:
        return any(d.status in (ERROR, UNDELIVERABLE) for d in self.deliveries)


def firing_id(alert: str, subject: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"shoal:firing:{alert}:{subject}"))


def compose(alert: Alert, occurrence: Occurrence, app_name: str, app_id: str, link: str) -> tuple[str, str]:
    """The subject line and the text of a firing's message."""
    title = f"[shoal] {TITLES.get(alert.rule, alert.rule)}{' resolved' if occurrence.resolved else ''}: {app_name}"
    lines = [occurrence.summary[:1].upper() + occurrence.summary[1:], "",
             f"App: {app_name} ({app_id})", f"Component: {alert.component or '(the whole app)'}",
             f"Rule: {alert.rule}"]
    if occurrence.reason:
        lines.append(f"Reason: {occurrence.reason}")
    lines.append(f"Link: {link}")
    return title, "\n".join(lines) + "\n"


def _stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else "0001-01-01T00:00:00Z"


def progress_steps(firing: Firing) -> list[dict[str, Any]]:
    """The latest firing as progress steps of the alert: what fired, then each delivery."""
    steps: list[dict[str, Any]] = [{"name": "alert-fired", "status": "SUCCESS", "started_at": _stamp(firing.fired_at),
                                    "ended_at": _stamp(firing.fired_at),
                                    "reason": {"code": firing.rule, "message": firing.text.splitlines()[0]}}]
    for d in firing.deliveries:
        status = {SUCCESS: "SUCCESS", ERROR: "ERROR", UNDELIVERABLE: "ERROR"}.get(
            d.status, "RUNNING" if d.attempts else "PENDING")
        step: dict[str, Any] = {"name": d.shown_as, "status": status, "started_at": _stamp(d.started_at),
                                "ended_at": _stamp(d.ended_at)}
        if d.last_error:
            code = "Undeliverable" if d.status == UNDELIVERABLE else "DeliveryFailed"
            tries = f" (attempt {d.attempts} of {len(RETRY_DELAYS) + 1}" + (
                f", next at {_stamp(d.next_attempt_at)})" if d.open else ")")
            step["reason"] = {"code": code, "message": d.last_error + ("" if d.status == UNDELIVERABLE else tries)}
        steps.append(step)
    return steps
