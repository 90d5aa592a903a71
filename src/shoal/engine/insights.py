"""What an app's running parts look like: instances, health, alerts, bandwidth."""

from __future__ import annotations

from datetime import date
from typing import Any

from shoal.core.errors import BadRequest, NotFound
from shoal.domain.accounts import Account
from shoal.domain.alerts import alert_id, progress_steps
from shoal.domain.apps import App
from shoal.domain.deployments import Phase
from shoal.domain.plan import RunUnit, alert_rules, running_units, units_of
from shoal.domain.ports import AlertStore, DeploymentStore, InstanceQuery, JobStore, TrafficStore
from shoal.domain.traffic import TrafficMeter
from shoal.engine.deployments import DeploymentsService
from shoal.engine.metrics import MetricsService

COMPONENT_TYPES = {"service": "SERVICE", "worker": "WORKER", "job": "JOB"}
CONFIGURED = {"name": "alert-configure-insight-alert", "status": "SUCCESS"}


class InsightsService:
    def __init__(self, deployments: DeploymentsService, store: DeploymentStore, job_store: JobStore,
                 traffic: TrafficStore, meter: TrafficMeter, running: InstanceQuery, alert_store: AlertStore,
                 metrics: MetricsService | None = None) -> None:
        self._running = running
        self._metrics = metrics
        self._alerts = alert_store
        self._deployments = deployments
        self._store = store
        self._jobs = job_store
        self._traffic = traffic
        self._meter = meter

    def instances(self, account: Account, app_id: str) -> list[dict[str, Any]]:
        """The active deployment's instances that really run now (an archived app has none)."""
        app = self._deployments.app(account, app_id)
        active = app.active_deployment_id or ""
        kinds = {u.name: u.kind for u in units_of(app.spec)}
        found = []
        for inst in self._running.instances(app.id):
            kind = COMPONENT_TYPES.get(kinds.get(inst.component, ""))
            if inst.deployment_id != active or kind is None:
                continue
            found.append({"component_name": inst.component, "component_type": kind, "instance_name": inst.name,
                          "instance_alias": f"{inst.component}-{inst.name.rsplit('-', 1)[-1]}"})
        return sorted(found, key=lambda i: (i["component_name"], i["instance_name"]))

    def health(self, account: Account, app_id: str) -> dict[str, Any]:
        """Per service and worker: instances the active deployment wants, and how many are really ready."""
        app = self._deployments.app(account, app_id)
        active = self._store.get_deployment(app.id, app.active_deployment_id or "")
        spec = active.spec if active else app.spec
        live = active is not None and active.phase == Phase.ACTIVE
        runs = {u.name for u in running_units(spec)}
        states = [i for i in self._running.instances(app.id) if active is not None and i.deployment_id == active.id]
        components = []
        for unit in (u for u in units_of(spec) if u.runs_continuously):
            # An archived app's components are listed with nothing desired: stopped, not failing.
            own = [i for i in states if i.component == unit.name]
            desired = _desired(unit, len(own)) if unit.name in runs and live else 0
            ready = sum(1 for i in own if i.ready)
            cpu = [i.cpu_percent for i in own if i.cpu_percent is not None]
            memory = [i.memory_bytes for i in own if i.memory_bytes is not None]
            limit = unit.size.memory_bytes if unit.size else 0
            components.append({
                "name": unit.name, "cpu_usage_percent": round(sum(cpu) / len(cpu), 2) if cpu else 0,
                "memory_usage_percent": round(100 * sum(memory) / len(memory) / limit, 2) if memory and limit else 0,
                "replicas_desired": desired, "replicas_ready": ready,
                "state": "UNKNOWN" if not desired else ("HEALTHY" if ready >= desired else "UNHEALTHY")})
        return {"components": components, "functions_components": []}

    def alerts(self, account: Account, app_id: str) -> list[dict[str, Any]]:
        """The spec's alerts with their destinations; ``progress`` adds the latest firing and how each
        of its deliveries went, and ``phase`` is ERROR while that firing could not be delivered."""
        app = self._deployments.app(account, app_id)
        destinations = self._alerts.alert_destinations(app.id)
        latest = self._alerts.latest_firings(app.id)
        found = []
        for rule in alert_rules(app.spec):
            ident = alert_id(app.id, rule.component, rule.rule)
            emails, slack = destinations.get(ident, ([], []))
            firing = latest.get(ident)
            alert: dict[str, Any] = {"id": ident, "spec": dict(rule.spec), "emails": emails, "slack_webhooks": slack,
                                     "phase": "ERROR" if firing and firing.failed else "ACTIVE",
                                     "progress": {"steps": [dict(CONFIGURED),
                                                            *(progress_steps(firing) if firing else [])]}}
            if rule.component:
                alert["component_name"] = rule.component
            found.append(alert)
        return found

    def assign_alert_destinations(self, account: Account, app_id: str, wanted: str, emails: list[str],
                                  slack_webhooks: list[dict[str, str]]) -> dict[str, Any]:
        app = self._deployments.app(account, app_id)
        for rule in alert_rules(app.spec):
            if alert_id(app.id, rule.component, rule.rule) == wanted:
                self._alerts.set_alert_destinations(wanted, app.id, rule.component, rule.rule, dict(rule.spec), emails,
                                                  slack_webhooks)
                return next(a for a in self.alerts(account, app_id) if a["id"] == wanted)
        raise NotFound(f"alert {wanted!r} not found")

    def app_metrics(self, account: Account, app_id: str, component: str | None, metric: str, start: float,
                    end: float) -> dict[str, Any]:
        """The monitoring API's answer for one app metric (cpu_percentage, memory_percentage,
        restart_count): a Prometheus-style matrix, one series per instance."""
        app = self._deployments.app(account, app_id)
        if end < start:
            raise BadRequest("end must not be before start")
        found = self._metrics.matrix(app.id, component, metric, start, end) if self._metrics else []
        return {"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"app_component": comp, "app_component_instance": instance, "app_uuid": app.id},
             "values": [[round(at, 3), f"{value:g}"] for at, value in points]}
            for comp, instance, points in found]}}

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


def _desired(unit: RunUnit, running: int) -> int:
    """Instances the unit should have now: what the autoscaler settled on (within its bounds), none
    while asleep (inactivity_sleep), else its count."""
    if unit.inactivity_sleep_seconds and running == 0:
        return 0
    if unit.autoscaling is not None:
        return max(unit.autoscaling.min_instances, min(unit.autoscaling.max_instances, running))
    return unit.instance_count


def _day(value: str | None) -> date:
    if not value:
        from datetime import UTC, datetime, timedelta

        return (datetime.now(UTC) - timedelta(days=1)).date()
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise BadRequest(f"date {value!r} is not an RFC 3339 date") from exc
