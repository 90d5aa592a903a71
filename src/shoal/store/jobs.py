"""Job invocations in SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shoal.domain.jobs import JobInvocation
from shoal.store.tables import job_invocations


def _invocation(row: Any) -> JobInvocation:
    return JobInvocation(id=row.id, app_id=row.app_id, deployment_id=row.deployment_id, job_name=row.job_name,
                         phase=row.phase, trigger=row.trigger, created_at=row.created_at, started_at=row.started_at,
                         completed_at=row.completed_at)


class SqlJobStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def save_invocation(self, inv: JobInvocation) -> None:
        """Insert or replace (invocation ids are stable, so repeating a step rewrites the same row)."""
        values = dict(app_id=inv.app_id, deployment_id=inv.deployment_id, job_name=inv.job_name, phase=inv.phase,
                      trigger=inv.trigger, created_at=inv.created_at, started_at=inv.started_at,
                      completed_at=inv.completed_at)
        with self._engine.begin() as conn:
            updated = conn.execute(job_invocations.update().where(job_invocations.c.id == inv.id).values(**values))
            if not updated.rowcount:
                conn.execute(job_invocations.insert().values(id=inv.id, **values))

    def get_invocation(self, app_id: str, invocation_id: str) -> JobInvocation | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(job_invocations).where(job_invocations.c.app_id == app_id,
                                                                job_invocations.c.id == invocation_id)).first()
        return _invocation(row) if row else None

    def list_invocations(self, app_id: str, offset: int, limit: int, deployment_id: str | None = None,
                         job_names: list[str] | None = None) -> tuple[list[JobInvocation], int]:
        where = [job_invocations.c.app_id == app_id]
        if deployment_id:
            where.append(job_invocations.c.deployment_id == deployment_id)
        if job_names:
            where.append(job_invocations.c.job_name.in_(job_names))
        query = (sa.select(job_invocations).where(*where)
                 .order_by(job_invocations.c.created_at.desc(), job_invocations.c.id).offset(offset).limit(limit))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            total = conn.execute(sa.select(sa.func.count()).select_from(job_invocations).where(*where)).scalar_one()
        return [_invocation(r) for r in rows], int(total)
