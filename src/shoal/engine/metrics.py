"""Instance metrics over time: what the runtime measures, sampled every ``interval`` seconds for each
live deployment and kept as long as the longest alert window (in memory: a restart starts the
series again). The monitoring endpoints read them; each round, the observers (metric alert rules,
the autoscaler) look at the round's instances and the series.

It asks the runtime through ``InstanceQuery`` only, so any runtime that fills in ``cpu_percent``,
``memory_bytes`` and ``restarts`` (processes from cgroups, containers from the engine's stats,
Kubernetes from its metrics API) is measured the same way.

Per component beside per instance (``domain.component_metrics``): each round drains what the
ingress's ``TrafficMeter`` counted for each served component since the last round (requests and
their durations) into one reading per component of every live deployment — a zero reading when
nothing came, so an idle service's rate is 0, not unknown — and, from a runtime that counts
function activations (``ActivationQuery``), each functions component's activations since the last
round (the growth of its gateway's totals). The request and FUNCTIONS_* rules read those.
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
from shoal.domain import component_metrics
from shoal.domain.component_metrics import Activations, ComponentSeries, Reading
from shoal.domain.deployments import Deployment
from shoal.domain.metrics import LONGEST_WINDOW, Sample, Series, window_value
from shoal.domain.plan import AppPlan, Kind, make_plan
from shoal.domain.ports import ActivationQuery, DeploymentStore, InstanceQuery, InstanceState
from shoal.domain.traffic import RequestTally, TrafficMeter

log = logging.getLogger("shoal.engine")
SeriesKey = tuple[str, str, str]  # app id, component, instance name
ComponentKey = tuple[str, str]  # app id, component
CACHED_PLANS = 256
SERVED_KINDS = (Kind.SERVICE, Kind.FUNCTION)  # what the ingress routes requests to


class Observer(Protocol):
    async def observe(self, plan: AppPlan, states: list[InstanceState], metrics: MetricsService,
                      now: float) -> None: ...


class MetricsService:
    def __init__(self, deployments: DeploymentStore, running: InstanceQuery, clock: Clock, interval: float = 10.0,
                 window_scale: float = 1.0, observers: Sequence[Observer] = (),
                 traffic: TrafficMeter | None = None, activations: ActivationQuery | None = None) -> None:
        self._deployments = deployments
        self._running = running
        self._clock = clock
        self.interval = interval
        self.window_scale = window_scale
        self._observers = list(observers)
        self._keep = LONGEST_WINDOW * window_scale + 3 * interval
        self._series: dict[SeriesKey, Series] = {}
        self._traffic = traffic
        self._components: dict[ComponentKey, ComponentSeries] = {}
        self._activations = activations
        self._totals: dict[ComponentKey, Activations] = {}  # each gateway's totals at the last round
        self._last_round: float | None = None
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
        deployments = await asyncio.to_thread(self._deployments.active_deployments)
        # Drained together, on the loop the ingress counts on: one interval's requests, none twice.
        tallies = self._traffic.take_requests() if self._traffic is not None else {}
        seconds = now - self._last_round if self._last_round is not None else self.interval
        self._last_round, recorded = now, set[ComponentKey]()
        for dep in deployments:
            plan = self._plan(dep)
            states = [s for s in await asyncio.to_thread(self._running.instances, dep.app_id)
                      if s.deployment_id == dep.id]
            self._record(plan, states, now)
            totals = (await asyncio.to_thread(self._activations.activations, dep.app_id, dep.id)
                      if self._activations is not None and any(u.kind == Kind.FUNCTION for u in plan.units) else {})
            self._record_components(plan, tallies, totals, now, seconds, recorded)
            for observer in self._observers:
                try:
                    await observer.observe(plan, states, self, now)
                except Exception:
                    log.exception("%s failed on app %s", type(observer).__name__, dep.app_id)
        for key in [k for k, series in self._series.items() if not series.samples or
                    series.samples[-1].at < now - self._keep]:
            del self._series[key]
        for ckey in [k for k, cs in self._components.items() if not cs.readings or
                     cs.readings[-1].at < now - self._keep]:
            del self._components[ckey]
            self._totals.pop(ckey, None)

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

    def _record_components(self, plan: AppPlan, tallies: dict[ComponentKey, RequestTally],
                           totals: dict[str, Activations], now: float, seconds: float,
                           recorded: set[ComponentKey]) -> None:
        for unit in plan.units:
            key = (plan.app_id, unit.name)
            if unit.kind not in SERVED_KINDS or key in recorded:
                continue  # an app with two live deployments this round: its components once
            recorded.add(key)
            tally = tallies.get(key)
            series = self._components.get(key)
            if series is None:
                series = self._components[key] = ComponentSeries(self._keep)
            done = Activations()
            if unit.name in totals:
                done = totals[unit.name].since(self._totals.get(key))
                self._totals[key] = totals[unit.name]
            series.add(Reading(now, max(seconds, 1e-3), tally.requests if tally else 0,
                               tuple(tally.buckets) if tally else (), done))

    # -- reading -----------------------------------------------------------------------------------

    def series(self, app_id: str, component: str | None = None) -> dict[tuple[str, str], list[Sample]]:
        """(component, instance) → a copy of its samples."""
        return {(c, i): list(s.samples) for (a, c, i), s in list(self._series.items())
                if a == app_id and (component is None or c == component)}

    def window_values(self, app_id: str, component: str, rule: str, start: float, end: float,
                      whole: bool = True) -> list[float]:
        """Each instance's value of ``rule`` over [start, end]; with ``whole``, only instances
        sampled since the window began (younger ones are not judged yet). A component rule
        (``domain.component_metrics``) has one value, the component's, once it is sampled so long."""
        if rule in component_metrics.COMPONENT_RULES:
            component_series = self._components.get((app_id, component))
            if component_series is None or (whole and not component_series.covers(start, 1.5 * self.interval)):
                return []
            value = component_metrics.window_value(rule, component_series.within(start, end))
            return [] if value is None else [value]
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
