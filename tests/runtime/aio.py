"""Running async tests without a plugin: a fresh loop per test, and a failure for leaked tasks."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, overload


Test = Callable[..., Coroutine[Any, Any, None]]


@overload
def run_async(fn: Test) -> Callable[..., None]: ...


@overload
def run_async(fn: None = None, *, timeout: float = 20) -> Callable[[Test], Callable[..., None]]: ...


def run_async(fn: Test | None = None, *,
              timeout: float = 20) -> Callable[..., None] | Callable[[Test], Callable[..., None]]:
    """Run an async test in a fresh loop and fail it on tasks it leaves behind (``@run_async``, or
    ``@run_async(timeout=...)`` for a test that waits on slower things than 20 s allow)."""
    if fn is None:
        return functools.partial(run_async, timeout=timeout)
    test = fn

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        async def main() -> None:
            await asyncio.wait_for(test(*args, **kwargs), timeout)
            leftover = asyncio.all_tasks() - {asyncio.current_task()}
            assert not leftover, leftover

        asyncio.run(main())

    return wrapper
