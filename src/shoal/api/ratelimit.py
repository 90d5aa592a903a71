"""Per-token rate limits with DigitalOcean's sliding windows (an hour and a minute) and headers."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from shoal.core.clock import Clock
from shoal.core.errors import TooManyRequests
from shoal.core.settings import RateLimits

HOUR = 3600.0
MINUTE = 60.0


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset: int  # Unix time when the oldest counted request leaves the hourly window

    def headers(self) -> dict[str, str]:
        return {"ratelimit-limit": str(self.limit), "ratelimit-remaining": str(self.remaining),
                "ratelimit-reset": str(self.reset)}


class _Window:
    __slots__ = ("hour", "minute")

    def __init__(self) -> None:
        self.hour: deque[float] = deque()
        self.minute: deque[float] = deque()

    def expire(self, now: float) -> None:
        while self.hour and self.hour[0] <= now - HOUR:
            self.hour.popleft()
        while self.minute and self.minute[0] <= now - MINUTE:
            self.minute.popleft()


class RateLimiter:
    """Counts requests per key; kept in memory because one shoal process serves the API."""

    def __init__(self, limits: RateLimits, clock: Clock) -> None:
        self._limits = limits
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def hit(self, key: str) -> Quota:
        """Count one request, or raise ``TooManyRequests`` (carrying the quota) when a window is full."""
        now = self._clock.now().timestamp()
        window = self._windows.setdefault(key, _Window())
        window.expire(now)
        if len(window.hour) >= self._limits.per_hour:
            raise self._refuse(window, now, window.hour[0] + HOUR - now)
        if len(window.minute) >= self._limits.per_minute:
            raise self._refuse(window, now, window.minute[0] + MINUTE - now)
        window.hour.append(now)
        window.minute.append(now)
        if len(self._windows) > 100_000:  # idle keys (e.g. unauthenticated addresses) must not pile up
            self._sweep(now)
        return self._quota(window, now)

    def peek(self, key: str) -> Quota:
        now = self._clock.now().timestamp()
        window = self._windows.get(key) or _Window()
        window.expire(now)
        return self._quota(window, now)

    def _quota(self, window: _Window, now: float) -> Quota:
        oldest = window.hour[0] if window.hour else now
        return Quota(limit=self._limits.per_hour, remaining=max(0, self._limits.per_hour - len(window.hour)),
                     reset=math.ceil(oldest + HOUR))

    def _refuse(self, window: _Window, now: float, wait: float) -> TooManyRequests:
        error = TooManyRequests(retry_after=max(1, math.ceil(wait)))
        error.quota = self._quota(window, now)  # type: ignore[attr-defined]
        return error

    def _sweep(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if not w.hour or w.hour[-1] <= now - HOUR]:
            del self._windows[key]
