"""The engine's job scheduler, on a fake clock: each app's schedules are replaced as a whole when
its live deployment changes, fire on their cron in their time zone, and never overlap themselves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from shoal.core.clock import FakeClock
from shoal.engine.schedules import JobScheduler, Scheduled
from tests.runtime.aio import run_async


async def _settle(fired: list[str], count: int) -> None:
    for _ in range(200):
        if len(fired) >= count:
            return
        await asyncio.sleep(0.01)


@run_async
async def test_replacing_an_apps_schedules_stops_the_old_ones_and_keeps_other_apps() -> None:
    clock = FakeClock(datetime(2026, 1, 1, 3, 0, 30, tzinfo=UTC))
    fired: list[str] = []

    async def fire(due: Scheduled) -> None:
        fired.append(f"{due.app_id}/{due.deployment_id}/{due.job}")

    scheduler = JobScheduler(fire, clock)
    scheduler.replace_app("shop", [Scheduled("shop", "dep-1", "nightly", "* * * * *"),
                                   Scheduled("shop", "dep-1", "hourly", "* * * * *")])
    scheduler.replace_app("blog", [Scheduled("blog", "dep-9", "digest", "* * * * *")])
    scheduler.replace_app("shop", [Scheduled("shop", "dep-2", "nightly", "* * * * *")])  # a new deployment went live
    loop = asyncio.get_running_loop().create_task(scheduler.run())
    clock.advance(60)  # every remaining schedule is due
    scheduler.wake()
    await _settle(fired, 2)
    assert sorted(fired) == ["blog/dep-9/digest", "shop/dep-2/nightly"]

    scheduler.replace_app("shop", [])  # archived or deleted: nothing of it fires any more
    fired.clear()
    clock.advance(60)
    scheduler.wake()
    await _settle(fired, 1)
    await asyncio.sleep(0.05)
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    assert fired == ["blog/dep-9/digest"]


@run_async
async def test_a_run_still_going_skips_the_next_fire() -> None:
    clock = FakeClock(datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC))
    started: list[str] = []
    release = asyncio.Event()

    async def fire(due: Scheduled) -> None:
        started.append(due.job)
        await release.wait()

    scheduler = JobScheduler(fire, clock)
    scheduler.replace_app("app", [Scheduled("app", "dep", "slow", "* * * * *")])
    loop = asyncio.get_running_loop().create_task(scheduler.run())
    clock.advance(60)
    scheduler.wake()
    await _settle(started, 1)
    clock.advance(60)  # due again while the first run still goes
    scheduler.wake()
    await asyncio.sleep(0.1)
    assert started == ["slow"]
    loop.cancel()  # cancelling the loop ends the run in flight too
    await asyncio.gather(loop, return_exceptions=True)


def test_cron_is_read_in_the_jobs_time_zone() -> None:
    due = Scheduled("app", "dep", "daily", "0 9 * * *", "America/New_York")
    # 09:00 in New York in January is 14:00 UTC.
    assert due.next_after(datetime(2026, 1, 5, 12, 0, tzinfo=UTC)) == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
