"""Traffic counters: the store adds flushes up (SQLite and PostgreSQL), and the flusher never drops counts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from shoal.domain.apps import App
from shoal.domain.traffic import ComponentTraffic, TrafficCounts, TrafficMeter
from shoal.engine.traffic import flush_traffic, flushing_traffic
from shoal.store import Database, open_database
from tests.conftest import postgres_database
from tests.runtime.aio import run_async

DAY = date(2026, 3, 1)
WEB = "00000000-0000-4000-8000-00000000000a"
API = "00000000-0000-4000-8000-00000000000b"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = (postgres_database(request.getfixturevalue("postgres")) if request.param == "postgres"
           else f"sqlite:///{tmp_path / 'state.db'}")
    database = open_database(url)
    account = database.accounts.ensure_account("alice", "a@x")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for app_id, name in ((WEB, "web"), (API, "api")):
        database.apps.insert_app(App(id=app_id, account_id=account.id, name=name, spec={"name": name}, region="nyc",
                                     ingress_host=f"{name}.localhost", tier_slug="basic", project_id="p",
                                     created_at=now, updated_at=now))
    yield database
    database.close()


def _counts(*records: tuple[str, str, date, int, int, float]) -> TrafficCounts:
    meter = TrafficMeter()
    for app_id, component, day, status, bytes_out, seconds in records:
        meter.record(app_id, component, day, status, bytes_out, seconds)
    return meter.take()


def test_adding_traffic_twice_accumulates_per_app_component_and_day(db: Database) -> None:
    db.traffic.add_traffic(_counts((WEB, "site", DAY, 200, 100, 0.5), (WEB, "site", DAY, 503, 10, 1.0),
                                   (API, "api", DAY, 200, 7, 0.25)))
    db.traffic.add_traffic(_counts((WEB, "site", DAY, 200, 1000, 0.5), (WEB, "admin", DAY, 500, 1, 0.125),
                                   (WEB, "site", date(2026, 3, 2), 200, 5_000_000_000, 2.0)))
    assert db.traffic.bytes_out([WEB, API, "00000000-0000-4000-8000-00000000000c"], DAY) == {WEB: 1111, API: 7}
    assert db.traffic.bytes_out([WEB], date(2026, 3, 2)) == {WEB: 5_000_000_000}  # past 32 bits
    assert db.traffic.component_traffic(WEB, DAY) == {
        "site": ComponentTraffic(requests=3, errors=1, bytes_out=1110, seconds=2.0),
        "admin": ComponentTraffic(requests=1, errors=1, bytes_out=1, seconds=0.125)}
    assert db.traffic.component_traffic(API, date(2026, 3, 2)) == {}


def test_counts_of_deleted_apps_are_dropped_and_their_rows_go_with_them(db: Database) -> None:
    db.traffic.add_traffic(_counts((WEB, "site", DAY, 200, 100, 0.5), (API, "api", DAY, 200, 7, 0.25)))
    app = db.apps.get_app_by_name(db.accounts.ensure_account("alice", "a@x").id, "web")
    assert app is not None and db.apps.delete_app(app.account_id, WEB)
    assert db.traffic.bytes_out([WEB, API], DAY) == {API: 7}
    assert db.traffic.component_traffic(WEB, DAY) == {}
    # The ingress may still hold counts of the app it served a moment ago: they are dropped,
    # not left to fail every later flush on the foreign key.
    db.traffic.add_traffic(_counts((WEB, "site", DAY, 200, 100, 0.5), (API, "api", DAY, 200, 3, 0.25)))
    assert db.traffic.bytes_out([WEB, API], DAY) == {API: 10}


class MemoryTrafficStore:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.added: list[TrafficCounts] = []

    def add_traffic(self, counts: TrafficCounts) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("database is away")
        self.added.append(counts)

    def bytes_out(self, app_ids: list[str], day: date) -> dict[str, int]:
        return {a: sum(n for c in self.added for (app, d), n in c.bandwidth.items() if (app, d) == (a, day))
                for a in app_ids}

    def component_traffic(self, app_id: str, day: date) -> dict[str, ComponentTraffic]:
        return {}


@run_async
async def test_a_failed_flush_puts_the_counts_back_for_the_next() -> None:
    meter, store = TrafficMeter(), MemoryTrafficStore(failures=1)
    assert await flush_traffic(meter, store)  # nothing counted: nothing written
    assert store.added == []
    meter.record(WEB, "site", DAY, 200, 100, 0.5)
    assert not await flush_traffic(meter, store)
    assert meter.pending(WEB, DAY) == 100
    meter.record(WEB, "site", DAY, 200, 20, 0.5)
    assert await flush_traffic(meter, store)
    assert meter.pending(WEB, DAY) == 0
    assert store.bytes_out([WEB], DAY) == {WEB: 120}
    assert store.added[0].components[WEB, "site", DAY] == ComponentTraffic(requests=2, bytes_out=120, seconds=1.0)


@run_async
async def test_flushing_writes_while_running_and_once_more_at_the_end() -> None:
    meter, store = TrafficMeter(), MemoryTrafficStore()
    async with flushing_traffic(meter, store, every=0.01):
        meter.record(WEB, "site", DAY, 200, 100, 0.5)
        while not store.added:
            await asyncio.sleep(0.01)
        meter.record(WEB, "site", DAY, 200, 5, 0.5)  # counted after the last periodic flush
    assert store.bytes_out([WEB], DAY) == {WEB: 105}
    assert meter.pending(WEB, DAY) == 0
