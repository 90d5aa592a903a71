"""The autoscaler and inactivity sleep: changing how many instances a live service or worker runs.

Autoscaling (``autoscaling``, do-runtime-reference.md §7): each round, the mean CPU of the unit's
instances over the last ``EVALUATE_SECONDS`` gives, by the HPA rule, how many it needs between its
bounds. More are started at once (then not again for ``UP_COOLDOWN_SECONDS``); fewer only once
every recommendation of the last ``DOWN_STABILIZATION_SECONDS`` was below the current count, to
the largest of them — so a dip does not shed instances a peak needs again. DigitalOcean documents
none of these periods; they are Kubernetes' defaults.

Inactivity sleep (``inactivity_sleep.after_seconds``): a service that got no request for that long
is scaled to zero; the ingress holds the next request while it starts again (``InstanceScaler``).

Every change is an AUTOSCALING event (events API) with DigitalOcean's fields, a line in the
deployment's AUTOSCALE_EVENT log, and fires the app's AUTOSCALE_SUCCEEDED / AUTOSCALE_FAILED
alerts. ``window_scale`` shrinks every period (and the sleep delay) alike, for trying it out.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable

from shoal.core.clock import Clock
from shoal.domain import alerts as rules
from shoal.domain import scaling
from shoal.domain.metrics import CPU_UTILIZATION, desired_instances
from shoal.domain.plan import AppPlan, Kind, RunUnit
from shoal.domain.ports import InstanceScaler, InstanceState, LogSink, ScaleEventStore
from shoal.engine.alerts import AlertsEngine
from shoal.engine.metrics import MetricsService

log = logging.getLogger("shoal.engine")
EVALUATE_SECONDS = 60.0
UP_COOLDOWN_SECONDS = 30.0
DOWN_STABILIZATION_SECONDS = 300.0
Key = tuple[str, str]  # app id, component


class Autoscaler:
    def __init__(self, scaler: InstanceScaler | None, events: ScaleEventStore, alerts: AlertsEngine,
                 sinks: Callable[[str], LogSink], clock: Clock) -> None:
        self._scaler = scaler
        self._events = events
        self._alerts = alerts
        self._sinks = sinks
        self._clock = clock
        self._changed_at: dict[Key, float] = {}
        self._recommended: dict[Key, deque[tuple[float, int]]] = {}
        self._asleep: set[Key] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def observe(self, plan: AppPlan, states: list[InstanceState], metrics: MetricsService,
                      now: float) -> None:
        if self._scaler is None:
            return
        for unit in plan.running:
            own = [s for s in states if s.component == unit.name]
            key = (plan.app_id, unit.name)
            if key in self._asleep and own:
                self._asleep.discard(key)  # awake again (or a newer deployment runs it)
            if not unit.runs_continuously or key in self._asleep:
                continue
            if unit.kind == Kind.SERVICE and unit.inactivity_sleep_seconds and own:
                if await self._sleep_if_idle(plan, unit, len(own), metrics.window_scale):
                    continue
            if unit.autoscaling is not None and own:
                await self._autoscale(plan, unit, len(own), metrics, now)

    async def _autoscale(self, plan: AppPlan, unit: RunUnit, current: int, metrics: MetricsService,
                         now: float) -> None:
        bounds = unit.autoscaling
        assert bounds is not None
        scale = metrics.window_scale
        window = max(EVALUATE_SECONDS * scale, 2 * metrics.interval)
        values = metrics.window_values(plan.app_id, unit.name, CPU_UTILIZATION, now - window, now, whole=False)
        if not values:
            return
        observed = sum(values) / len(values)
        wanted = desired_instances(current, observed, float(bounds.cpu_percent or 80), bounds.min_instances,
                                   bounds.max_instances)
        key = (plan.app_id, unit.name)
        history = self._recommended.setdefault(key, deque())
        history.append((now, wanted))
        while history and history[0][0] < now - DOWN_STABILIZATION_SECONDS * scale:
            history.popleft()
        since_change = now - self._changed_at.get(key, 0.0)
        target = wanted
        if wanted < current:
            target = max(w for _, w in history)  # the largest recommendation of the stabilization window
            if since_change < DOWN_STABILIZATION_SECONDS * scale:
                return
        elif wanted > current and since_change < UP_COOLDOWN_SECONDS * scale:
            return
        if target != current:
            self._changed_at[key] = now
            await self._change(plan, unit, current, target, scaling.CPU, f"CPU {observed:.0f} % of a target "
                                                                         f"{bounds.cpu_percent or 80} %")

    async def _sleep_if_idle(self, plan: AppPlan, unit: RunUnit, current: int, scale: float) -> bool:
        assert self._scaler is not None and unit.inactivity_sleep_seconds is not None
        idle = self._scaler.idle_seconds(plan, unit)
        if idle is None or idle < unit.inactivity_sleep_seconds * scale:
            return False
        self._asleep.add((plan.app_id, unit.name))
        await self._change(plan, unit, current, 0, scaling.SCALE_TO_ZERO, f"no request for {idle:.0f} s",
                           woken=lambda: self._woken(plan, unit))
        return True

    def _woken(self, plan: AppPlan, unit: RunUnit) -> None:
        """The runtime woke a sleeping service for a request: record it (from the runtime's task)."""
        self._asleep.discard((plan.app_id, unit.name))
        task = asyncio.get_running_loop().create_task(self._record(
            plan, unit, 0, max(1, unit.instance_count), scaling.SCALE_FROM_ZERO, "a request came in", ""))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _change(self, plan: AppPlan, unit: RunUnit, current: int, target: int, metric: str, why: str,
                      woken: Callable[[], None] | None = None) -> None:
        assert self._scaler is not None
        sink = self._sinks(plan.deployment_id)
        sink("AUTOSCALE_EVENT", unit.name, f"scaling {unit.name} from {current} to {target} instance(s): {why}")
        problem = ""
        try:
            running = await self._scaler.scale(plan, unit, target, sink, woken)
            if running != target:
                problem = f"{running} instance(s) run instead of {target}"
        except Exception as exc:  # the unit keeps what it has; the event says why
            log.exception("could not scale %s of app %s", unit.name, plan.app_id)
            problem = str(exc) or type(exc).__name__
        await self._record(plan, unit, current, target, metric, why, problem)

    async def _record(self, plan: AppPlan, unit: RunUnit, current: int, target: int, metric: str, why: str,
                      problem: str) -> None:
        event = scaling.ScaleEvent(
            id=str(uuid.uuid4()), app_id=plan.app_id, deployment_id=plan.deployment_id, created_at=self._clock.now(),
            phase=scaling.FAILED if problem else scaling.SUCCEEDED,
            components={unit.name: scaling.ScaleChange(current, target, metric)}, reason=problem)
        await asyncio.to_thread(self._events.add_scale_event, event)
        outcome = f"failed: {problem}" if problem else "done"
        self._sinks(plan.deployment_id)("AUTOSCALE_EVENT", unit.name,
                                        f"autoscaling {unit.name} from {current} to {target} {outcome} ({why})")
        rule = rules.AUTOSCALE_FAILED if problem else rules.AUTOSCALE_SUCCEEDED
        summary = f"{unit.name} of {plan.app_name} scaled from {current} to {target} instance(s) ({why})"
        await self._alerts.fire_rule(plan, rule, rules.Occurrence(rule, event.id, summary, problem))
