"""Waiting with a deadline, without losing a cancellation.

On Python 3.11, ``asyncio.wait_for`` returns the awaited result when a cancellation arrives just as
that result is ready, and the cancellation is gone (python/cpython#86296, fixed in 3.12). A task
told to stop then carries on: a log lane retrying an untrusted receiver every 0.2 s never ended and
held shoal's shutdown (CI, test_a_destination_whose_certificate_is_not_trusted_says_so).
``asyncio.timeout`` has no such window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """``awaitable``'s result, or ``TimeoutError`` after ``seconds`` (None: no deadline)."""
    async with asyncio.timeout(seconds):
        return await awaitable
