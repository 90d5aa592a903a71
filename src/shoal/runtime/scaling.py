"""Scaling a running unit, for the runtimes that run instances themselves (process and container):
adding and removing instances (autoscaling), putting a service to sleep and waking it.

An instance added to a published service joins its upstream at once, marked down until its
readiness check passes; one removed leaves the upstream first, so it gets no new request, and is
stopped after a short drain. A sleeping service has no instances and a ``wake`` hook on its
upstream: the ingress holds requests and calls it, the unit's instances start, and the requests go
on once one is ready.

The moves are the same in both runtimes; what an instance is and how one starts, leaves its
upstream and stops is each runtime's (the abstract methods).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from shoal.domain.plan import DEFAULT_HTTP_PORT, AppPlan, Kind, RunUnit, probe_from_spec
from shoal.domain.ports import LogSink
from shoal.domain.routing import Upstream

logger = logging.getLogger("shoal.runtime")
SCALE_DRAIN_SECONDS = 2.0  # how long a removed instance may finish what it was sent before the switch


class Named(Protocol):
    @property
    def name(self) -> str: ...


I = TypeVar("I", bound=Named)


class Scalable(Protocol[I]):
    """What scaling reads and changes of a unit's record."""

    unit: RunUnit
    instances: list[I]
    upstream: Upstream | None
    changing: asyncio.Lock  # one scale (or wake) at a time
    waking: asyncio.Future[None] | None


R = TypeVar("R", bound="Scalable[Any]")


class Scaler(ABC, Generic[R, I]):
    @abstractmethod
    async def _add(self, plan: AppPlan, record: R, count: int, log: LogSink) -> Sequence[I]:
        """Start instances until the unit has ``count``, each in the upstream (down until ready)."""

    @abstractmethod
    def _withdraw(self, instance: I) -> None:
        """Take the instance out of its upstream: no new request goes to it."""

    @abstractmethod
    async def stop(self, names: list[str]) -> None: ...

    @abstractmethod
    async def _wait_ready(self, name: str, patience: float) -> bool: ...

    async def scale(self, plan: AppPlan, record: R, count: int, log: LogSink,
                    woken: Callable[[], None] | None) -> int:
        async with record.changing:
            if count == 0 and record.upstream is not None:
                # Asleep from the moment the last instance leaves the upstream: a request arriving
                # while they stop waits for this change, then wakes the service.
                record.upstream.wake = functools.partial(self._wake, plan, record, log, woken)
            current = len(record.instances)
            if count > current:
                await self._grow(plan, record, count, log)
            elif count < current:
                await self._shrink(record, count, log)
        return len(record.instances)

    async def _grow(self, plan: AppPlan, record: R, count: int, log: LogSink) -> None:
        added = await self._add(plan, record, count, log)
        patience = (record.unit.readiness or probe_from_spec(None, DEFAULT_HTTP_PORT)).patience_seconds
        for instance in added:
            if await self._wait_ready(instance.name, patience):
                log("DEPLOY", record.unit.name, f"instance {instance.name} is healthy")

    async def _shrink(self, record: R, count: int, log: LogSink) -> None:
        leaving, record.instances = record.instances[count:], record.instances[:count]
        for instance in leaving:
            self._withdraw(instance)
        if record.unit.kind == Kind.SERVICE and leaving:
            await asyncio.sleep(min(record.unit.termination.drain_seconds, SCALE_DRAIN_SECONDS))
        await self.stop([i.name for i in leaving])
        for instance in leaving:
            log("DEPLOY", record.unit.name, f"stopped instance {instance.name}")

    async def _wake(self, plan: AppPlan, record: R, log: LogSink, woken: Callable[[], None] | None) -> None:
        """What the ingress calls for a sleeping service: one start however many requests wait."""
        if record.upstream is not None:
            record.upstream.last_used = time.monotonic()  # a request is here: not idle, whoever looks now
        if record.waking is None or record.waking.done():
            record.waking = asyncio.ensure_future(self._wake_up(plan, record, log, woken))
        await asyncio.shield(record.waking)  # a request that gives up must not stop the start

    async def _wake_up(self, plan: AppPlan, record: R, log: LogSink, woken: Callable[[], None] | None) -> None:
        try:
            async with record.changing:
                if record.instances:
                    return
                log("DEPLOY", record.unit.name, f"{record.unit.name} is waking up: a request came in")
                await self._grow(plan, record, max(1, record.unit.instance_count), log)
                if record.upstream is not None:
                    record.upstream.last_used = time.monotonic()  # the waiting requests are about to go
                    record.upstream.wake = None
            if woken is not None:
                woken()
        except Exception:  # the waiting requests get the ingress's 502; the next request tries again
            logger.exception("could not wake %s of %s", record.unit.name, plan.app_name)
