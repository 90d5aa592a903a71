"""Daily traffic counters in SQL: each flush of the ingress's meter adds to them.

Adding is an upsert (insert the row, or increment its counters) in one statement per table, so
two flushes never lose each other's counts; it uses each dialect's ``ON CONFLICT DO UPDATE``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from shoal.domain.traffic import ComponentTraffic, TrafficCounts
from shoal.store.tables import app_bandwidth_daily, apps, component_traffic_daily

_COUNTERS = ("requests", "errors", "bytes_out", "seconds")


def _add(conn: Connection, table: sa.Table, keys: list[str], counters: tuple[str, ...],
         rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table)
        stmt: sa.Insert = pg.on_conflict_do_update(index_elements=keys,
                                                   set_={c: table.c[c] + pg.excluded[c] for c in counters})
    else:
        lite = sqlite.insert(table)
        stmt = lite.on_conflict_do_update(index_elements=keys,
                                          set_={c: table.c[c] + lite.excluded[c] for c in counters})
    conn.execute(stmt, rows)


class SqlTrafficStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add_traffic(self, counts: TrafficCounts) -> None:
        """Add ``counts`` to the stored days, all in one transaction.

        Counts of apps that no longer exist are dropped: their rows would break the foreign key,
        and a flush that failed on them every time would hold back every other app's counts.
        """
        app_ids = {a for a, _ in counts.bandwidth} | {a for a, _, _ in counts.components}
        if not app_ids:
            return
        with self._engine.begin() as conn:
            known = set(conn.execute(sa.select(apps.c.id).where(apps.c.id.in_(app_ids))).scalars())
            _add(conn, app_bandwidth_daily, ["app_id", "day"], ("bytes_out",),
                 [{"app_id": a, "day": d, "bytes_out": n} for (a, d), n in counts.bandwidth.items() if a in known])
            _add(conn, component_traffic_daily, ["app_id", "component", "day"], _COUNTERS,
                 [{"app_id": a, "component": c, "day": d, "requests": t.requests, "errors": t.errors,
                   "bytes_out": t.bytes_out, "seconds": t.seconds}
                  for (a, c, d), t in counts.components.items() if a in known])

    def bytes_out(self, app_ids: list[str], day: date) -> dict[str, int]:
        """Stored bytes out on ``day`` of those of ``app_ids`` that served any."""
        query = sa.select(app_bandwidth_daily).where(app_bandwidth_daily.c.app_id.in_(app_ids),
                                                     app_bandwidth_daily.c.day == day)
        with self._engine.connect() as conn:
            return {row.app_id: int(row.bytes_out) for row in conn.execute(query)}

    def component_traffic(self, app_id: str, day: date) -> dict[str, ComponentTraffic]:
        """Stored traffic of each component of ``app_id`` that served any on ``day``."""
        query = sa.select(component_traffic_daily).where(component_traffic_daily.c.app_id == app_id,
                                                         component_traffic_daily.c.day == day)
        with self._engine.connect() as conn:
            return {row.component: ComponentTraffic(requests=int(row.requests), errors=int(row.errors),
                                                    bytes_out=int(row.bytes_out), seconds=float(row.seconds))
                    for row in conn.execute(query)}
