"""Scheduled jobs: each SCHEDULED job of an app's live deployment runs on its cron, in its time zone.

The engine owns the schedule, so every runtime gets it the same way (the ``simulate`` runtime
included): when a run is due the scheduler calls back, and the deployer runs the job through the
runtime with the same job-invocation bookkeeping as a deploy-time job. One run of a job at a time:
a fire while the previous run still goes is skipped (DigitalOcean's concurrency for cron jobs).
Time comes from the injected ``Clock``; the loop wakes when the next run is due or a schedule changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from shoal.core.aio import within
from shoal.core.clock import Clock
from shoal.domain.jobs import next_run

log = logging.getLogger("shoal.engine")


@dataclass(frozen=True)
class Scheduled:
    app_id: str
    deployment_id: str
    job: str
    cron: str
    time_zone: str = "UTC"

    def next_after(self, moment: datetime) -> datetime:
        return next_run(self.cron, self.time_zone, moment)


Fire = Callable[[Scheduled], Awaitable[None]]
IDLE_SECONDS = 60.0


class JobScheduler:
    def __init__(self, fire: Fire, clock: Clock) -> None:
        self._fire = fire
        self._clock = clock
        self._due: dict[tuple[str, str], tuple[Scheduled, datetime]] = {}  # (app, job) → schedule, next run
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    def replace_app(self, app_id: str, schedules: list[Scheduled]) -> None:
        """The app's live deployment changed: its schedules are exactly ``schedules`` from now on."""
        for key in [k for k in self._due if k[0] == app_id]:
            del self._due[key]
        now = self._clock.now()
        for schedule in schedules:
            self._due[(app_id, schedule.job)] = (schedule, schedule.next_after(now))
        self._wake.set()

    def wake(self) -> None:
        """Look at the clock again now (the loop otherwise sleeps until the next run is due)."""
        self._wake.set()

    def schedules(self, app_id: str) -> list[Scheduled]:
        return [s for (app, _), (s, _) in self._due.items() if app == app_id]

    async def run(self) -> None:
        try:
            while True:
                self._fire_due()
                upcoming = min((when for _, when in self._due.values()), default=None)
                wait = IDLE_SECONDS if upcoming is None else \
                    max(0.05, min(IDLE_SECONDS, (upcoming - self._clock.now()).total_seconds()))
                self._wake.clear()
                try:
                    await within(self._wake.wait(), wait)
                except TimeoutError:
                    pass
        finally:
            await self._cancel_runs()

    def _fire_due(self) -> None:
        now = self._clock.now()
        for key, (schedule, when) in list(self._due.items()):
            if when > now:
                continue
            self._due[key] = (schedule, schedule.next_after(now))
            current = self._running.get(key)
            if current is not None and not current.done():
                log.warning("job %s of app %s is still running; skipping this scheduled run", schedule.job,
                            schedule.app_id)
                continue
            self._running[key] = asyncio.get_running_loop().create_task(self._guarded(schedule))

    async def _guarded(self, schedule: Scheduled) -> None:
        try:
            await self._fire(schedule)
        except Exception:
            log.exception("scheduled run of job %s failed to start", schedule.job)

    async def _cancel_runs(self) -> None:
        tasks = [t for t in self._running.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
