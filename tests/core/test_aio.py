"""A deadline that keeps the cancellation it is given."""

from __future__ import annotations

import asyncio

import pytest

from shoal.core.aio import within


def test_a_cancellation_that_arrives_with_the_result_still_cancels() -> None:
    # The moment Python 3.11's wait_for gets wrong: the awaited result is ready and the waiting task
    # is cancelled before it resumes. wait_for hands back the result and the task goes on.
    async def main() -> None:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(within(ready, 10))
        await asyncio.sleep(0)
        ready.set_result(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_the_result_comes_back_in_time_and_a_deadline_passes_as_timeout() -> None:
    async def main() -> None:
        assert await within(asyncio.sleep(0, "done"), 5) == "done"
        with pytest.raises(TimeoutError):
            await within(asyncio.Event().wait(), 0.05)
        assert await within(asyncio.sleep(0, 7), None) == 7

    asyncio.run(main())
