"""The job scheduler: an archived app's scheduled jobs are unregistered one by one and stop firing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from shoal.runtime.local.schedule import Schedule, Scheduler
from tests.runtime.aio import run_async


@run_async
async def test_unregistering_one_job_keeps_the_others_firing() -> None:
    moment = [datetime(2026, 1, 1, 3, 0, 30, tzinfo=UTC)]
    fired: list[str] = []

    async def run(schedule: Schedule) -> None:
        fired.append(schedule.job)

    scheduler = Scheduler(run, now=lambda: moment[0])
    for job in ("nightly", "hourly"):
        scheduler.register(Schedule("app", "dep-1", job, "* * * * *"))
    scheduler.register(Schedule("app", "dep-2", "nightly", "* * * * *"))
    scheduler.unregister("dep-1", "nightly")
    moment[0] += timedelta(minutes=1)  # every remaining schedule is due
    loop = asyncio.get_running_loop().create_task(scheduler.run())
    while len(fired) < 2:
        await asyncio.sleep(0.01)
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    await scheduler.aclose()
    assert sorted(fired) == ["hourly", "nightly"]  # dep-1's hourly and dep-2's nightly

    scheduler.unregister("dep-1")  # without a job: all of the deployment's schedules
    scheduler.unregister("dep-2")
    fired.clear()
    moment[0] += timedelta(minutes=1)
    loop = asyncio.get_running_loop().create_task(scheduler.run())
    await asyncio.sleep(0.1)
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    await scheduler.aclose()
    assert fired == []
