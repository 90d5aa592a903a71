"""Instance metrics over time: what the runtime measures, sampled every ``interval`` seconds for each
live deployment and kept as long as the longest alert window (in memory: a restart starts the
series again). The monitoring endpoints read them; each round, the observers (metric alert rules,
the autoscaler) look at the round's instances and the series.

It asks the runtime through ``InstanceQuery`` only, so any runtime that fills in ``cpu_percent``,
``memory_bytes`` and ``restarts`` (processes from cgroups, containers from the engine's stats,
Kubernetes from its metrics API) is measured the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from shoal.core.aio import within
from shoal.core.clock import Clock
from shoal.domain.deployments import Deployment
from shoal.domain.metrics import LONGEST_WINDOW, Sample, Series, window_value
from shoal.domain.plan import AppPlan, make_plan
from shoal.domain.ports import DeploymentStore, InstanceQuery, InstanceState

log = logging.getLogger("shoal.engine")
SeriesKey = tuple[str, str, str]  # app id, component, instance name
CACHED_PLANS = 256


class Observer(Protocol):
    async def observe(self, plan: AppPlan, states: list[InstanceState], metrics: MetricsService,
                      now: float) -> None: ...


class MetricsService:
    def __init__(self, deployments: DeploymentStore, running: InstanceQuery, clock: Clock, interval: float = 10.0,
                 window_scale: float = 1.0, observers: Sequence[Observer] = ()) -> None:
        self._deployments = deployments
        self._running = running
        self._clock = clock
        self.interval = interval
        self.window_scale = window_scale
        self._observers = list(observers)
        self._keep = LONGEST_WINDOW * window_scale + 3 * interval
        self._series: dict[SeriesKey, Series] = {}
        self._plans: OrderedDict[str, AppPlan] = OrderedDict()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sample()
            except Exception:  # a bad round must not end the sampling
                log.exception("could not sample instance metrics")
            with contextlib.suppress(TimeoutError):
                await within(stop.wait(), self.interval)

    async def sample(self) -> None:
        """One round: every live deployment's instances, then the observers."""
        now = self._clock.now().timestamp()
        for dep in await asyncio.to_thread(self._deployments.active_deployments):
            plan = self._plan(dep)
            states = [s for s in await asyncio.to_thread(self._running.instances, dep.app_id)
                      if s.deployment_id == dep.id]
            self._record(plan, states, now)
            for observer in self._observers:
                try:
                    await observer.observe(plan, states, self, now)
                except Exception:
                    log.exception("%s failed on app %s", type(observer).__name__, dep.app_id)
        for key in [k for k, series in self._series.items() if not series.samples or
                    series.samples[-1].at < now - self._keep]:
            del self._series[key]

    def _plan(self, dep: Deployment) -> AppPlan:
        plan = self._plans.get(dep.id)
        if plan is None:
            plan = self._plans[dep.id] = make_plan(dep.spec, app_id=dep.app_id, deployment_id=dep.id)
            while len(self._plans) > CACHED_PLANS:
                self._plans.popitem(last=False)
        return plan

    def _record(self, plan: AppPlan, states: list[InstanceState], now: float) -> None:
        sizes = {u.name: u.size.memory_bytes for u in plan.units if u.size}
        for state in states:
            limit = sizes.get(state.component, 0)
            memory = 100 * state.memory_bytes / limit if state.memory_bytes is not None and limit else None
            key = (plan.app_id, state.component, state.name)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = Series(self._keep)
            series.add(Sample(now, state.cpu_percent, round(memory, 2) if memory is not None else None,
                              state.restarts))

    # -- reading -----------------------------------------------------------------------------------

    def series(self, app_id: str, component: str | None = None) -> dict[tuple[str, str], list[Sample]]:
        """(component, instance) → a copy of its samples."""
        return {(c, i): list(s.samples) for (a, c, i), s in list(self._series.items())
                if a == app_id and (component is None or c == component)}

    def window_values(self, app_id: str, component: str, rule: str, start: float, end: float,
                      whole: bool = True) -> list[float]:
        """Each instance's value of ``rule`` over [start, end]; with ``whole``, only instances
        sampled since the window began (younger ones are not judged yet)."""
        found = []
        for (a, c, _), series in list(self._series.items()):
            if a != app_id or c != component or (whole and not series.covers(start, 1.5 * self.interval)):
                continue
            value = window_value(rule, series, start, end)
            if value is not None:
                found.append(value)
        return found

    def matrix(self, app_id: str, component: str | None, metric: str, start: float,
               end: float) -> list[tuple[str, str, list[tuple[float, float]]]]:
        """Per instance, (time, value) of ``metric`` — cpu_percentage, memory_percentage or
        restart_count — between ``start`` and ``end``: what the monitoring endpoints answer."""
        found = []
        for (comp, instance), samples in sorted(self.series(app_id, component).items()):
            points = []
            for s in samples:
                if not start <= s.at <= end:
                    continue
                value = (s.cpu_percent if metric == "cpu_percentage" else
                         s.memory_percent if metric == "memory_percentage" else float(s.restarts))
                if value is not None:
                    points.append((s.at, value))
            if points:
                found.append((comp, instance, points))
        return found
