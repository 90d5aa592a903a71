"""Deployments, their logs and job invocations in SQL.

Every change of a deployment is a conditional update on its ``version``, so the engine and the
API (cancel, supersede) never overwrite each other: the loser re-reads and sees the other's change.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shoal.domain.changes import APP
from shoal.domain.deployments import TERMINAL, Deployment, Phase
from shoal.domain.logs import LogLine
from shoal.store.changes import ChangeFeed
from shoal.store.tables import apps, deployment_logs, deployments

_OPEN = [p.value for p in Phase if p not in TERMINAL]


def _deployment(row: Any) -> Deployment:
    return Deployment(
        id=row.id, app_id=row.app_id, account_id=row.account_id, spec=row.spec, phase=Phase(row.phase),
        phase_last_updated_at=row.phase_last_updated_at, created_at=row.created_at, updated_at=row.updated_at,
        cause=row.cause, cause_details=row.cause_details, progress=row.progress, components=row.components,
        previous_deployment_id=row.previous_deployment_id, cloned_from=row.cloned_from,
        force_build=row.force_build, restart_components=row.restart_components, timing=row.timing,
        tier_slug=row.tier_slug, ended_reason=row.ended_reason, version=row.version)


def _values(dep: Deployment) -> dict[str, Any]:
    return dict(spec=dep.spec, phase=dep.phase.value, phase_last_updated_at=dep.phase_last_updated_at,
                updated_at=dep.updated_at, cause=dep.cause, cause_details=dep.cause_details, progress=dep.progress,
                components=dep.components, previous_deployment_id=dep.previous_deployment_id,
                cloned_from=dep.cloned_from, force_build=dep.force_build, restart_components=dep.restart_components,
                timing=dep.timing, tier_slug=dep.tier_slug, ended_reason=dep.ended_reason)


def insert_deployment(conn: Connection, dep: Deployment, now: datetime) -> list[str]:
    """Insert ``dep`` as the app's newest deployment; older unfinished ones become SUPERSEDED.

    Runs inside the caller's transaction (app create/update, or a deployment request), so the app
    and its deployment are written together or not at all. Returns the ids it superseded.
    """
    seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(deployments.c.seq), 0))
                       .where(deployments.c.app_id == dep.app_id)).scalar_one() + 1
    older = [r.id for r in conn.execute(sa.select(deployments.c.id).where(
        deployments.c.app_id == dep.app_id, deployments.c.phase.in_(_OPEN)))]
    if older:
        conn.execute(deployments.update().where(deployments.c.id.in_(older)).values(
            phase=Phase.SUPERSEDED.value, phase_last_updated_at=now, updated_at=now,
            version=deployments.c.version + 1))
    conn.execute(deployments.insert().values(id=dep.id, app_id=dep.app_id, account_id=dep.account_id, seq=seq,
                                             version=0, created_at=dep.created_at, **_values(dep)))
    conn.execute(apps.update().where(apps.c.id == dep.app_id).values(last_deployment_created_at=dep.created_at,
                                                                      revision=apps.c.revision + 1))
    return older


def _bump(conn: Connection, app_id: str) -> None:
    conn.execute(apps.update().where(apps.c.id == app_id).values(revision=apps.c.revision + 1))


class SqlDeploymentStore:
    def __init__(self, engine: Engine, changes: ChangeFeed) -> None:
        self._engine = engine
        self._changes = changes

    def add_deployment(self, dep: Deployment, now: datetime) -> list[str]:
        with self._changes.changing(self._engine, APP, dep.app_id) as conn:
            return insert_deployment(conn, dep, now)

    def get_deployment(self, app_id: str, deployment_id: str) -> Deployment | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(deployments).where(deployments.c.id == deployment_id,
                                                            deployments.c.app_id == app_id)).first()
        return _deployment(row) if row else None

    def deployment_by_id(self, deployment_id: str) -> Deployment | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(deployments).where(deployments.c.id == deployment_id)).first()
        return _deployment(row) if row else None

    def deployments_by_ids(self, ids: set[str]) -> dict[str, Deployment]:
        if not ids:
            return {}
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(deployments).where(deployments.c.id.in_(ids))).all()
        return {r.id: _deployment(r) for r in rows}

    def newest_deployments(self, app_ids: list[str]) -> dict[str, list[Deployment]]:
        """For each app, its unfinished deployments and its newest one (what the app object shows)."""
        if not app_ids:
            return {}
        newest = (sa.select(deployments.c.app_id, sa.func.max(deployments.c.seq).label("seq"))
                  .where(deployments.c.app_id.in_(app_ids)).group_by(deployments.c.app_id).subquery())
        query = sa.select(deployments).where(deployments.c.app_id.in_(app_ids), sa.or_(
            deployments.c.phase.in_(_OPEN),
            sa.tuple_(deployments.c.app_id, deployments.c.seq).in_(sa.select(newest.c.app_id, newest.c.seq))))
        found: dict[str, list[Deployment]] = {}
        with self._engine.connect() as conn:
            for row in conn.execute(query.order_by(deployments.c.seq.desc())):
                found.setdefault(row.app_id, []).append(_deployment(row))
        return found

    def list_deployments(self, app_id: str, offset: int, limit: int,
                         types: set[str] | None = None) -> tuple[list[Deployment], int]:
        where = [deployments.c.app_id == app_id]
        with self._engine.connect() as conn:
            rows = [_deployment(r) for r in conn.execute(sa.select(deployments).where(*where)
                                                         .order_by(deployments.c.seq.desc()))]
        if types:
            rows = [d for d in rows if d.cause_details.get("type") in types]
        return rows[offset: offset + limit], len(rows)

    def save_deployment(self, dep: Deployment) -> Deployment | None:
        """Write ``dep`` if nobody changed it since it was read; None means re-read and reconsider."""
        with self._engine.begin() as conn:
            result = conn.execute(deployments.update()
                                  .where(deployments.c.id == dep.id, deployments.c.version == dep.version)
                                  .values(version=dep.version + 1, **_values(dep)))
            if result.rowcount:
                _bump(conn, dep.app_id)
                self._changes.announce(conn, APP, dep.app_id)
        if not result.rowcount:
            return None
        self._changes.emit(dep.app_id)
        return replace(dep, version=dep.version + 1)

    def go_live(self, dep: Deployment, now: datetime) -> Deployment | None:
        """Make ``dep`` the app's active deployment and retire the previous one, in one transaction."""
        with self._engine.begin() as conn:
            result = conn.execute(deployments.update()
                                  .where(deployments.c.id == dep.id, deployments.c.version == dep.version)
                                  .values(version=dep.version + 1, **_values(dep)))
            if not result.rowcount:
                return None
            previous = conn.execute(sa.select(apps.c.active_deployment_id).where(apps.c.id == dep.app_id)).scalar()
            if previous and previous != dep.id:
                conn.execute(deployments.update().where(deployments.c.id == previous,
                                                        deployments.c.phase == Phase.ACTIVE.value)
                             .values(phase=Phase.SUPERSEDED.value, phase_last_updated_at=now, updated_at=now,
                                     version=deployments.c.version + 1))
            conn.execute(apps.update().where(apps.c.id == dep.app_id)
                         .values(active_deployment_id=dep.id, last_deployment_active_at=now,
                                 revision=apps.c.revision + 1))
            self._changes.announce(conn, APP, dep.app_id)
        self._changes.emit(dep.app_id)
        return replace(dep, version=dep.version + 1)

    def unfinished_deployments(self) -> list[Deployment]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(deployments).where(deployments.c.phase.in_(_OPEN))
                                .order_by(deployments.c.created_at)).all()
        return [_deployment(r) for r in rows]

    def append_logs(self, lines: list[LogLine]) -> None:
        if not lines:
            return
        with self._engine.begin() as conn:
            # Lines of a deployment deleted with its app meanwhile are dropped, not an error.
            ids = {ln.deployment_id for ln in lines}
            alive = {r.id for r in conn.execute(sa.select(deployments.c.id).where(deployments.c.id.in_(ids)))}
            lines = [ln for ln in lines if ln.deployment_id in alive]
            if not lines:
                return
            conn.execute(deployment_logs.insert(), [
                {"deployment_id": ln.deployment_id, "stage": ln.stage, "component": ln.component, "ts": ln.ts,
                 "line": ln.line} for ln in lines])

    def read_logs(self, deployment_id: str, stages: set[str], component: str | None = None,
                  after_id: int = 0) -> list[tuple[int, LogLine]]:
        where = [deployment_logs.c.deployment_id == deployment_id, deployment_logs.c.stage.in_(stages),
                 deployment_logs.c.id > after_id]
        if component:
            where.append(deployment_logs.c.component == component)
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(deployment_logs).where(*where).order_by(deployment_logs.c.id)).all()
        return [(r.id, LogLine(r.deployment_id, r.stage, r.component, r.ts, r.line)) for r in rows]

    def active_deployment_id(self, app_id: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(sa.select(apps.c.active_deployment_id).where(apps.c.id == app_id)).scalar()

    def ingress_host(self, app_id: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(sa.select(apps.c.ingress_host).where(apps.c.id == app_id)).scalar()

    def active_deployment(self, app_id: str) -> Deployment | None:
        query = (sa.select(deployments).join_from(deployments, apps, apps.c.active_deployment_id == deployments.c.id)
                 .where(apps.c.id == app_id))
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _deployment(row) if row else None

    def newest_unfinished(self, app_id: str) -> Deployment | None:
        """The app's open deployment (a new one supersedes the older, so there is at most one)."""
        query = (sa.select(deployments).where(deployments.c.app_id == app_id, deployments.c.phase.in_(_OPEN))
                 .order_by(deployments.c.seq.desc()).limit(1))
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _deployment(row) if row else None

    def active_deployments(self) -> list[Deployment]:
        query = sa.select(deployments).join_from(deployments, apps, apps.c.active_deployment_id == deployments.c.id)
        with self._engine.connect() as conn:
            return [_deployment(r) for r in conn.execute(query)]
