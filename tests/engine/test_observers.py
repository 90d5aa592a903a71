"""Metric alerts and the autoscaler, driven round by round on a fake clock: the runtime is a memory twin
of the InstanceQuery and InstanceScaler ports, the store a real SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shoal.core.clock import FakeClock
from shoal.domain.apps import App
from shoal.domain.component_metrics import Activations
from shoal.domain.deployments import Deployment, Phase
from shoal.domain.plan import AppPlan, RunUnit, units_of
from shoal.domain.ports import InstanceState, LogSink
from shoal.domain.progress import build_tree
from shoal.engine.alerts import AlertsEngine
from shoal.engine.autoscaler import Autoscaler
from shoal.engine.metric_alerts import MetricAlerts
from shoal.domain.traffic import TrafficMeter
from shoal.engine.metrics import MetricsService
from shoal.store import Database, open_database
from shoal.store.tables import alert_firings
from tests.runtime.aio import run_async
from tests.engine.test_alerts_engine import MemoryNotifier

APP = "00000000-0000-4000-8000-000000000001"
DEP = "00000000-0000-4000-8000-0000000000d1"


class MemoryRuntime:
    """InstanceQuery and InstanceScaler as a memory twin: instances are a count and a CPU figure."""

    def __init__(self) -> None:
        self.count = 1
        self.cpu = 0.0
        self.restarts = 0
        self.idle: float | None = 0.0
        self.scaled: list[int] = []
        self.woken: Callable[[], None] | None = None
        self.functions: dict[str, Activations] = {}  # per functions component: its gateway's totals

    def instances(self, app_id: str) -> list[InstanceState]:
        return [InstanceState(DEP, "web", f"shop-web-{i}", True, self.restarts, cpu_percent=self.cpu,
                              memory_bytes=256 * 2**20) for i in range(self.count)]

    async def scale(self, plan: AppPlan, unit: RunUnit, count: int, log: LogSink,
                    woken: Callable[[], None] | None = None) -> int:
        self.scaled.append(count)
        self.count, self.woken = count, woken
        return count

    def idle_seconds(self, plan: AppPlan, unit: RunUnit) -> float | None:
        return self.idle

    def activations(self, app_id: str, deployment_id: str) -> dict[str, Activations]:
        return dict(self.functions)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'state.db'}")
    yield database
    database.close()


def _live(db: Database, clock: FakeClock, web: dict[str, Any], alerts: list[dict[str, Any]] | None = None,
          functions: list[dict[str, Any]] | None = None) -> None:
    spec: dict[str, Any] = {"name": "shop", "alerts": alerts or [], "services": [{"name": "web", **web}]}
    if functions:
        spec["functions"] = functions
    account = db.accounts.ensure_account("admin", "admin@example.com")
    now = clock.now()
    dep = Deployment(id=DEP, app_id=APP, account_id=account.id, spec=spec, phase=Phase.ACTIVE,
                     phase_last_updated_at=now, created_at=now, updated_at=now, cause="manual", cause_details={},
                     progress=build_tree(units_of(spec)), components=[])
    db.apps.insert_app(App(id=APP, account_id=account.id, name="shop", spec=spec, region="ams", ingress_host="h",
                           tier_slug="basic", project_id="p", created_at=now, updated_at=now), dep)
    stored = db.deployments.deployment_by_id(DEP)
    assert stored is not None and db.deployments.go_live(replace(stored), now) is not None


class Rig:
    def __init__(self, db: Database, clock: FakeClock, runtime: MemoryRuntime) -> None:
        self.meter = TrafficMeter()
        self.lines: list[str] = []
        self.notifier = MemoryNotifier()
        alerts = AlertsEngine(db.alerts, db.deployments, self.notifier, clock, link=lambda a, d: "link")
        self.autoscaler = Autoscaler(runtime, db.scale_events, alerts, self.sink, clock)
        self.metrics = MetricsService(db.deployments, runtime, clock, interval=1.0, window_scale=0.01,
                                      observers=[MetricAlerts(alerts), self.autoscaler], traffic=self.meter,
                                      activations=runtime)
        self.clock = clock
        self.db = db

    def sink(self, deployment_id: str) -> LogSink:
        return lambda stage, component, line: self.lines.append(f"{stage} {component} {line}")

    async def rounds(self, count: int, requests: int = 0, seconds: float = 0.01) -> None:
        """``count`` sampling rounds a second apart, the ingress serving ``requests`` of ``seconds``
        each to web between two rounds."""
        for _ in range(count):
            for _ in range(requests):
                self.meter.record(APP, "web", self.clock.now().date(), 200, 100, seconds)
            await self.metrics.sample()
            self.clock.advance(1)

    def firings(self, rule: str) -> list[str]:
        """Titles of every firing of ``rule``, oldest first (read from the store's table)."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(alert_firings.c.title).where(alert_firings.c.rule == rule)
                                .order_by(alert_firings.c.fired_at)).all()
        return [r.title for r in rows]

    def changes(self) -> list[tuple[int, int, str]]:
        return [(c.from_count, c.to_count, c.triggering_metric) for e in reversed(self.db.scale_events.scale_events(APP))
                for c in e.components.values()]


@run_async
async def test_a_metric_rule_fires_once_after_its_window_and_resolves_once(db: Database) -> None:
    clock, runtime = FakeClock(), MemoryRuntime()
    _live(db, clock, {"alerts": [{"rule": "CPU_UTILIZATION", "operator": "GREATER_THAN", "value": 70,
                                  "window": "FIVE_MINUTES"}]})  # 3 s at window_scale 0.01
    rig = Rig(db, clock, runtime)
    runtime.cpu = 95
    await rig.rounds(2)
    assert rig.firings("CPU_UTILIZATION") == []  # not before the window was sampled
    await rig.rounds(6)
    assert rig.firings("CPU_UTILIZATION") == ["[shoal] CPU utilization: shop"]
    runtime.cpu = 5
    await rig.rounds(8)
    assert rig.firings("CPU_UTILIZATION") == ["[shoal] CPU utilization: shop", "[shoal] CPU utilization resolved: shop"]


@run_async
async def test_requests_per_second_fire_after_the_window_and_resolve_when_the_traffic_stops(db: Database) -> None:
    clock, runtime = FakeClock(), MemoryRuntime()
    _live(db, clock, {"alerts": [{"rule": "REQUESTS_PER_SECOND", "operator": "GREATER_THAN", "value": 20,
                                  "window": "FIVE_MINUTES"}]})  # 3 s at window_scale 0.01
    rig = Rig(db, clock, runtime)
    await rig.rounds(2, requests=50)
    assert rig.firings("REQUESTS_PER_SECOND") == []  # not before the window was sampled
    await rig.rounds(3, requests=50)
    assert rig.firings("REQUESTS_PER_SECOND") == ["[shoal] Requests per second: shop"]  # once per firing
    await rig.rounds(5)
    await rig.rounds(5, requests=15)  # 15 a second is not above 20
    assert rig.firings("REQUESTS_PER_SECOND") == ["[shoal] Requests per second: shop",
                                                  "[shoal] Requests per second resolved: shop"]


@run_async
async def test_a_slow_p95_fires_and_an_idle_service_below_a_rate_fires_less_than(db: Database) -> None:
    clock, runtime = FakeClock(), MemoryRuntime()
    _live(db, clock, {"alerts": [
        {"rule": "REQUEST_DURATION_P95_MS", "operator": "GREATER_THAN", "value": 200, "window": "FIVE_MINUTES"},
        {"rule": "REQUESTS_PER_SECOND", "operator": "LESS_THAN", "value": 1, "window": "FIVE_MINUTES"}]})
    rig = Rig(db, clock, runtime)
    await rig.rounds(6, requests=10, seconds=0.05)
    assert rig.firings("REQUEST_DURATION_P95_MS") == [] and rig.firings("REQUESTS_PER_SECOND") == []
    await rig.rounds(6, requests=10, seconds=0.5)
    assert rig.firings("REQUEST_DURATION_P95_MS") == ["[shoal] Request duration (p95): shop"]
    await rig.rounds(6)  # no requests: a rate of 0 (below 1), and no duration to judge either way
    assert rig.firings("REQUESTS_PER_SECOND") == ["[shoal] Requests per second: shop"]
    assert rig.firings("REQUEST_DURATION_P95_MS") == ["[shoal] Request duration (p95): shop"]
    with rig.db.engine.connect() as conn:
        texts = conn.execute(sa.select(alert_firings.c.text).where(
            alert_firings.c.rule == "REQUEST_DURATION_P95_MS")).scalars().all()
    assert "P95 request duration of web: " in texts[0] and "(above 200 ms over 5 minutes)" in texts[0]


@run_async
async def test_the_functions_rules_judge_the_growth_of_the_gateways_totals(db: Database) -> None:
    clock, runtime = FakeClock(), MemoryRuntime()
    rules = [{"rule": "FUNCTIONS_ACTIVATION_COUNT", "value": 20, "window": "FIVE_MINUTES"},
             {"rule": "FUNCTIONS_ERROR_RATE_PER_MINUTE", "value": 100, "window": "FIVE_MINUTES"},
             {"rule": "FUNCTIONS_AVERAGE_DURATION_MS", "value": 500, "window": "FIVE_MINUTES"}]
    _live(db, clock, {}, functions=[{"name": "fns", "git": {"repo_clone_url": "https://example.com/f.git",
                                                             "branch": "main"}, "alerts": rules}])
    rig = Rig(db, clock, runtime)
    totals = Activations(source="gateway-1")
    for _ in range(6):  # 10 activations a second, 100 ms each, one in ten failing
        totals = Activations(totals.count + 10, totals.errors + 1, totals.duration_ms + 1000, 0, 0, "gateway-1")
        runtime.functions = {"fns": totals}
        await rig.rounds(1)
    assert rig.firings("FUNCTIONS_ACTIVATION_COUNT") == ["[shoal] Function activations: shop"]  # 30 in 3 s
    assert rig.firings("FUNCTIONS_ERROR_RATE_PER_MINUTE") == []  # 60 a minute
    assert rig.firings("FUNCTIONS_AVERAGE_DURATION_MS") == []
    # A new gateway starts counting again: its totals are growth, not a drop.
    runtime.functions = {"fns": Activations(1, 1, 2000, 0, 0, "gateway-2")}
    for _ in range(4):
        await rig.rounds(1)
    assert rig.firings("FUNCTIONS_ACTIVATION_COUNT") == ["[shoal] Function activations: shop",
                                                         "[shoal] Function activations resolved: shop"]
    assert rig.firings("FUNCTIONS_AVERAGE_DURATION_MS") == ["[shoal] Function duration: shop"]  # 2 s for one


@run_async
async def test_restarts_within_the_window_fire_restart_count(db: Database) -> None:
    clock, runtime = FakeClock(), MemoryRuntime()
    _live(db, clock, {"alerts": [{"rule": "RESTART_COUNT", "value": 2, "window": "FIVE_MINUTES"}]})
    rig = Rig(db, clock, runtime)
    await rig.rounds(5)
    runtime.restarts = 2
    await rig.rounds(1)
    assert rig.firings("RESTART_COUNT") == []  # two, not more than two
    runtime.restarts = 3
    await rig.rounds(1)
    assert rig.firings("RESTART_COUNT") == ["[shoal] Restart count: shop"]


@run_async
async def test_the_autoscaler_scales_up_at_once_and_down_only_after_the_stabilization_window(db: Database) -> None:
    clock, runtime = FakeClock(), MemoryRuntime()
    _live(db, clock, {"instance_size_slug": "apps-d-1vcpu-0.5gb", "autoscaling": {
        "min_instance_count": 1, "max_instance_count": 3, "metrics": {"cpu": {"percent": 50}}}},
        alerts=[{"rule": "AUTOSCALE_SUCCEEDED"}])
    rig = Rig(db, clock, runtime)
    runtime.cpu = 100
    await rig.rounds(1)
    assert runtime.scaled == [2]  # ceil(1 × 100 / 50)
    await rig.rounds(2)
    assert runtime.scaled == [2, 3]  # after the cool-down, and never past the maximum
    await rig.rounds(3)
    assert runtime.scaled == [2, 3]
    runtime.cpu = 10
    await rig.rounds(2)
    assert runtime.scaled == [2, 3]  # a dip is not enough
    await rig.rounds(8)
    assert runtime.scaled == [2, 3, 1]
    assert rig.changes() == [(1, 2, "cpu"), (2, 3, "cpu"), (3, 1, "cpu")]
    assert len(rig.firings("AUTOSCALE_SUCCEEDED")) == 3
    assert any(line.startswith("AUTOSCALE_EVENT web scaling web from 1 to 2") for line in rig.lines)


@run_async
async def test_an_idle_service_is_put_to_sleep_and_its_waking_is_recorded(db: Database) -> None:
    clock, runtime = FakeClock(), MemoryRuntime()
    _live(db, clock, {"inactivity_sleep": {"after_seconds": 600}})  # 6 s at window_scale 0.01
    rig = Rig(db, clock, runtime)
    runtime.idle = 5
    await rig.rounds(1)
    assert runtime.scaled == []
    runtime.idle = 7
    await rig.rounds(3)
    assert runtime.scaled == [0]  # once: asleep stays asleep
    assert runtime.woken is not None
    runtime.count, runtime.idle = 1, 0
    runtime.woken()  # the ingress woke it for a request
    await asyncio.sleep(0.1)
    assert rig.changes() == [(1, 0, "scale_to_zero"), (0, 1, "scale_from_zero")]
    await rig.rounds(2)
    assert runtime.scaled == [0]
