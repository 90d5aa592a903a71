from __future__ import annotations

import pytest

from shoal.api.ratelimit import RateLimiter
from shoal.core.clock import FakeClock
from shoal.core.errors import TooManyRequests
from shoal.core.settings import RateLimits


def test_minute_window_slides() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(per_hour=100, per_minute=2), clock)
    assert limiter.hit("t").remaining == 99
    clock.advance(30)
    assert limiter.hit("t").remaining == 98
    with pytest.raises(TooManyRequests) as raised:
        limiter.hit("t")
    assert raised.value.retry_after == 30
    clock.advance(30)
    assert limiter.hit("t").remaining == 97


def test_hour_window_and_reset_is_the_oldest_expiry() -> None:
    clock = FakeClock()
    start = clock.now().timestamp()
    limiter = RateLimiter(RateLimits(per_hour=2, per_minute=10), clock)
    first = limiter.hit("t")
    assert first.reset == int(start + 3600)
    clock.advance(100)
    limiter.hit("t")
    with pytest.raises(TooManyRequests) as raised:
        limiter.hit("t")
    assert raised.value.retry_after == 3500
    clock.advance(3500)
    assert limiter.hit("t").remaining == 0


def test_keys_are_independent() -> None:
    limiter = RateLimiter(RateLimits(per_hour=1, per_minute=1), FakeClock())
    limiter.hit("a")
    assert limiter.hit("b").remaining == 0
    assert limiter.peek("a").remaining == 0
