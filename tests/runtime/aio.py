"""Running async tests without a plugin: a fresh loop per test, and a failure for leaked tasks."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any


def run_async(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh loop and fail it on tasks it leaves behind."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        async def main() -> None:
            await asyncio.wait_for(fn(*args, **kwargs), 20)
            leftover = asyncio.all_tasks() - {asyncio.current_task()}
            assert not leftover, leftover

        asyncio.run(main())

    return wrapper
