"""Scheduled jobs: run each SCHEDULED job of an active deployment on its cron, in its time zone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

log = logging.getLogger("shoal.runtime")


@dataclass(frozen=True)
class Schedule:
    app_id: str
    deployment_id: str
    job: str
    cron: str
    time_zone: str = "UTC"

    def next_after(self, moment: datetime) -> datetime:
        local = moment.astimezone(ZoneInfo(self.time_zone or "UTC"))
        following: datetime = croniter(self.cron, local).get_next(datetime)
        return following.astimezone(UTC)


Run = Callable[[Schedule], Awaitable[None]]


class Scheduler:
    """Fires registered schedules; one run of a job at a time (an overlapping fire is skipped)."""

    def __init__(self, run: Run, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._run = run
        self._now = now
        self._due: dict[tuple[str, str], tuple[Schedule, datetime]] = {}
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    def register(self, schedule: Schedule) -> None:
        self._due[(schedule.deployment_id, schedule.job)] = (schedule, schedule.next_after(self._now()))
        self._wake.set()

    def unregister(self, deployment_id: str, job: str | None = None) -> None:
        """Stop firing the deployment's schedules (only ``job``'s, when given)."""
        for key in [k for k in self._due if k[0] == deployment_id and job in (None, k[1])]:
            del self._due[key]

    async def run(self) -> None:
        while True:
            now = self._now()
            for key, (schedule, when) in list(self._due.items()):
                if when <= now:
                    self._due[key] = (schedule, schedule.next_after(now))
                    self._fire(key, schedule)
            upcoming = min((when for _, when in self._due.values()), default=None)
            wait = 60.0 if upcoming is None else max(0.05, min(60.0, (upcoming - self._now()).total_seconds()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass

    def _fire(self, key: tuple[str, str], schedule: Schedule) -> None:
        current = self._running.get(key)
        if current is not None and not current.done():
            log.warning("job %s is still running; skipping this scheduled run", schedule.job)
            return
        self._running[key] = asyncio.get_running_loop().create_task(self._guarded(schedule))

    async def _guarded(self, schedule: Schedule) -> None:
        try:
            await self._run(schedule)
        except Exception:
            log.exception("scheduled run of job %s failed to start", schedule.job)

    async def aclose(self) -> None:
        tasks = [t for t in self._running.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
