"""Alerts in SQL: each alert's destinations, its firings (one row per firing, its deliveries as JSON
beside it), and AUTOSCALING events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shoal.domain.alerts import Delivery, Firing
from shoal.domain.deployments import Deployment
from shoal.domain.scaling import ScaleChange, ScaleEvent
from shoal.store.deployments import _deployment
from shoal.store.tables import alert_firings, alerts, autoscale_events, deployments

LATEST_SCANNED = 500  # an app's newest firings looked at for "the latest per alert"


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _delivery_json(d: Delivery) -> dict[str, Any]:
    return {"kind": d.kind, "target": d.target, "channel": d.channel, "status": d.status, "attempts": d.attempts,
            "next_attempt_at": _when(d.next_attempt_at), "started_at": _when(d.started_at),
            "ended_at": _when(d.ended_at), "last_error": d.last_error}


def _delivery(raw: dict[str, Any]) -> Delivery:
    return Delivery(kind=str(raw["kind"]), target=str(raw["target"]), channel=str(raw.get("channel") or ""),
                    status=str(raw["status"]), attempts=int(raw.get("attempts") or 0),
                    next_attempt_at=_parse(raw.get("next_attempt_at")), started_at=_parse(raw.get("started_at")),
                    ended_at=_parse(raw.get("ended_at")), last_error=str(raw.get("last_error") or ""))


def _firing(row: Any) -> Firing:
    return Firing(id=row.id, alert_id=row.alert_id, app_id=row.app_id, component=row.component_name, rule=row.rule,
                  subject=row.subject, fired_at=row.fired_at, title=row.title, text=row.text,
                  deliveries=tuple(_delivery(d) for d in row.deliveries))


def _values(firing: Firing) -> dict[str, Any]:
    return dict(deliveries=[_delivery_json(d) for d in firing.deliveries], next_attempt_at=firing.next_attempt_at)


class SqlAlertStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def alert_destinations(self, app_id: str) -> dict[str, tuple[list[str], list[dict[str, str]]]]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(alerts).where(alerts.c.app_id == app_id)).all()
        return {r.id: (r.emails, r.slack_webhooks) for r in rows}

    def set_alert_destinations(self, alert_id: str, app_id: str, component: str, rule: str, spec: dict[str, Any],
                               emails: list[str], slack_webhooks: list[dict[str, str]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(alerts.delete().where(alerts.c.id == alert_id))
            conn.execute(alerts.insert().values(id=alert_id, app_id=app_id, component_name=component, rule=rule,
                                                spec=spec, emails=emails, slack_webhooks=slack_webhooks))

    def record_firing(self, firing: Firing) -> bool:
        """Insert the firing unless one with its id exists; True if this call inserted it."""
        try:
            with self._engine.begin() as conn:
                if conn.execute(sa.select(alert_firings.c.id).where(alert_firings.c.id == firing.id)).first():
                    return False
                conn.execute(alert_firings.insert().values(
                    id=firing.id, alert_id=firing.alert_id, app_id=firing.app_id, component_name=firing.component,
                    rule=firing.rule, subject=firing.subject, fired_at=firing.fired_at, title=firing.title,
                    text=firing.text, **_values(firing)))
        except sa.exc.IntegrityError:  # inserted meanwhile, or the app was deleted: either way not ours to send
            return False
        return True

    def save_firing(self, firing: Firing) -> None:
        with self._engine.begin() as conn:
            conn.execute(alert_firings.update().where(alert_firings.c.id == firing.id).values(**_values(firing)))

    def due_firings(self, now: datetime, limit: int = 100) -> list[Firing]:
        query = (sa.select(alert_firings).where(alert_firings.c.next_attempt_at <= now)
                 .order_by(alert_firings.c.next_attempt_at, alert_firings.c.fired_at).limit(limit))
        with self._engine.connect() as conn:
            return [_firing(r) for r in conn.execute(query)]

    def take_due(self, now: datetime, lease_until: datetime, limit: int = 100) -> list[Firing]:
        """Due firings this caller now holds: each one's next attempt is moved to ``lease_until`` only
        if nobody moved it first, so of several servers exactly one attempts a delivery (and, if it
        dies doing so, another takes it when the lease ends)."""
        query = (sa.select(alert_firings).where(alert_firings.c.next_attempt_at <= now)
                 .order_by(alert_firings.c.next_attempt_at, alert_firings.c.fired_at).limit(limit))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        taken = []
        for row in rows:
            with self._engine.begin() as conn:
                moved = conn.execute(alert_firings.update().where(
                    alert_firings.c.id == row.id, alert_firings.c.next_attempt_at == row.next_attempt_at)
                    .values(next_attempt_at=lease_until))
            if moved.rowcount:
                taken.append(_firing(row))
        return taken

    def latest_firings(self, app_id: str) -> dict[str, Firing]:
        query = (sa.select(alert_firings).where(alert_firings.c.app_id == app_id)
                 .order_by(alert_firings.c.fired_at.desc()).limit(LATEST_SCANNED))
        found: dict[str, Firing] = {}
        with self._engine.connect() as conn:
            for row in conn.execute(query):
                found.setdefault(row.alert_id, _firing(row))
        return found

    def recent_deployment_ids(self, since: datetime, app_id: str) -> list[str]:
        query = sa.select(deployments.c.id).where(deployments.c.phase_last_updated_at >= since,
                                                  deployments.c.app_id == app_id)
        with self._engine.connect() as conn:
            return [r.id for r in conn.execute(query)]

    def recent_deployments(self, since: datetime, app_id: str | None = None) -> list[Deployment]:
        where = [deployments.c.phase_last_updated_at >= since]
        if app_id is not None:
            where.append(deployments.c.app_id == app_id)
        with self._engine.connect() as conn:
            return [_deployment(r) for r in conn.execute(sa.select(deployments).where(*where)
                                                         .order_by(deployments.c.created_at))]


class SqlScaleEventStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add_scale_event(self, event: ScaleEvent) -> None:
        components = {name: {"from": c.from_count, "to": c.to_count, "triggering_metric": c.triggering_metric}
                      for name, c in event.components.items()}
        try:
            with self._engine.begin() as conn:
                conn.execute(autoscale_events.insert().values(
                    id=event.id, app_id=event.app_id, deployment_id=event.deployment_id, created_at=event.created_at,
                    phase=event.phase, components=components, reason=event.reason))
        except sa.exc.IntegrityError:  # the app was deleted meanwhile
            return

    def scale_events(self, app_id: str) -> list[ScaleEvent]:
        query = (sa.select(autoscale_events).where(autoscale_events.c.app_id == app_id)
                 .order_by(autoscale_events.c.created_at.desc()))
        with self._engine.connect() as conn:
            return [ScaleEvent(id=r.id, app_id=r.app_id, deployment_id=r.deployment_id, created_at=r.created_at,
                               phase=r.phase, reason=r.reason, components={
                                   name: ScaleChange(int(c["from"]), int(c["to"]), str(c["triggering_metric"]))
                                   for name, c in r.components.items()})
                    for r in conn.execute(query)]
