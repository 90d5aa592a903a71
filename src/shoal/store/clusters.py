"""Registered database clusters in SQL (URLs stored sealed)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shoal.core.errors import Conflict
from shoal.store.tables import clusters


class SqlClusterStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add_cluster(self, name: str, engine: str, sealed_url: str, now: datetime) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(clusters.insert().values(name=name, engine=engine, sealed_url=sealed_url, created_at=now))
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"a cluster named {name!r} is already registered") from exc

    def get_cluster(self, name: str) -> tuple[str, str] | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(clusters).where(clusters.c.name == name)).first()
        return (row.engine, row.sealed_url) if row else None

    def list_clusters(self) -> list[tuple[str, str, str]]:
        with self._engine.connect() as conn:
            return [(r.name, r.engine, r.sealed_url) for r in conn.execute(sa.select(clusters).order_by(clusters.c.name))]

    def remove_cluster(self, name: str) -> bool:
        with self._engine.begin() as conn:
            return bool(conn.execute(clusters.delete().where(clusters.c.name == name)).rowcount)
