"""What an app's running parts look like: instances, health, alerts, bandwidth."""

from __future__ import annotations

from datetime import date
from typing import Any

from shoal.core.errors import BadRequest, NotFound
from shoal.domain.accounts import Account
from shoal.domain.alerts import alerts_of, progress_steps
from shoal.domain.deployments import Phase
from shoal.domain.plan import components, running
from shoal.domain.ports import AlertStore, DeploymentStore, JobStore, TrafficStore
from shoal.domain.traffic import TrafficMeter
from shoal.engine.deployments import DeploymentsService

COMPONENT_TYPES = {"service": "SERVICE", "worker": "WORKER", "job": "JOB"}
CONFIGURED = {"name": "alert-configure-insight-alert", "status": "SUCCESS"}


class InsightsService:
    def __init__(self, deployments: DeploymentsService, store: DeploymentStore, job_store: JobStore,
                 traffic: TrafficStore, meter: TrafficMeter, alert_store: AlertStore) -> None:
        self._deployments = deployments
        self._alerts = alert_store
        self._store = store
        self._jobs = job_store
        self._traffic = traffic
        self._meter = meter

    def instances(self, account: Account, app_id: str) -> list[dict[str, Any]]:
        app = self._deployments.app(account, app_id)
        active = self._store.get_deployment(app.id, app.active_deployment_id or "")
        if active is None:
            return []
        found = []
        for part in running(active.spec):  # an archived app has none
            if part.kind not in ("service", "worker"):
                continue
            for i in range(int(part.spec.get("instance_count") or 1)):
                found.append({"component_name": part.name, "component_type": COMPONENT_TYPES[part.kind],
                              "instance_name": f"{app.name}-{part.name}-{active.id[:8]}-{i}",
                              "instance_alias": f"{part.name}-{i}"})
        return found

    def health(self, account: Account, app_id: str) -> dict[str, Any]:
        app = self._deployments.app(account, app_id)
        active = self._store.get_deployment(app.id, app.active_deployment_id or "")
        spec = active.spec if active else app.spec
        healthy = active is not None and active.phase == Phase.ACTIVE
        runs = {p.name for p in running(spec)}
        parts = [p for p in components(spec) if p.kind in ("service", "worker")]
        # An archived app's components are listed with nothing desired: stopped, not failing.
        desired = {p.name: int(p.spec.get("instance_count") or 1) if p.name in runs else 0 for p in parts}
        return {"components": [{
            "name": p.name, "cpu_usage_percent": 0, "memory_usage_percent": 0,
            "replicas_desired": desired[p.name], "replicas_ready": desired[p.name] if healthy else 0,
            "state": "HEALTHY" if healthy and desired[p.name] else "UNKNOWN"} for p in parts],
            "functions_components": []}

    def alerts(self, account: Account, app_id: str) -> list[dict[str, Any]]:
        """The spec's alerts with their destinations; ``progress`` adds the latest firing and how each
        of its deliveries went, and ``phase`` is ERROR while that firing could not be delivered."""
        app = self._deployments.app(account, app_id)
        destinations = self._jobs.alert_destinations(app.id)
        latest = self._alerts.latest_firings(app.id)
        found = []
        for alert in alerts_of(app.id, app.spec):
            emails, slack = destinations.get(alert.id, ([], []))
            firing = latest.get(alert.id)
            entry: dict[str, Any] = {
                "id": alert.id, "spec": alert.spec, "emails": emails, "slack_webhooks": slack,
                "phase": "ERROR" if firing and firing.failed else "ACTIVE",
                "progress": {"steps": [dict(CONFIGURED), *(progress_steps(firing) if firing else [])]}}
            if alert.component:
                entry["component_name"] = alert.component
            found.append(entry)
        return found

    def assign_alert_destinations(self, account: Account, app_id: str, wanted: str, emails: list[str],
                                  slack_webhooks: list[dict[str, str]]) -> dict[str, Any]:
        app = self._deployments.app(account, app_id)
        for alert in alerts_of(app.id, app.spec):
            if alert.id == wanted:
                self._jobs.set_alert_destinations(wanted, app.id, alert.component, alert.rule, alert.spec, emails,
                                                  slack_webhooks)
                return next(a for a in self.alerts(account, app_id) if a["id"] == wanted)
        raise NotFound(f"alert {wanted!r} not found")

    def bandwidth(self, account: Account, app_ids: list[str], day: str | None) -> dict[str, Any]:
        """Bytes out per app on one UTC day (default: yesterday, as DigitalOcean's): what was
        flushed to the store plus what the meter holds that was not flushed yet."""
        if not app_ids:
            raise BadRequest("app_ids must name at least one app")
        if len(app_ids) > 100:
            raise BadRequest("app_ids may name at most 100 apps")
        for app_id in app_ids:
            self._deployments.app(account, app_id)
        when = _day(day)
        stored = self._traffic.bytes_out(app_ids, when)
        return {"app_bandwidth_usage": [
                    {"app_id": a, "bandwidth_bytes": str(stored.get(a, 0) + self._meter.pending(a, when))}
                    for a in app_ids],
                "date": f"{when.isoformat()}T00:00:00Z"}


def _day(value: str | None) -> date:
    if not value:
        from datetime import UTC, datetime, timedelta

        return (datetime.now(UTC) - timedelta(days=1)).date()
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise BadRequest(f"date {value!r} is not an RFC 3339 date") from exc
