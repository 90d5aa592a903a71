"""Component rules as values: what the ingress's meter counts per component, and what a window of
readings makes of it (requests per second, p95 duration, the functions rules)."""

from __future__ import annotations

from datetime import date

import pytest

from shoal.domain.component_metrics import (
    ACTIVATION_COUNT, AVERAGE_DURATION_MS, AVERAGE_WAIT_TIME_MS, ERROR_COUNT, ERROR_RATE_PER_MINUTE, GB_RATE_PER_SECOND,
    REQUEST_DURATION_P95_MS, REQUESTS_PER_SECOND, Activations, ComponentSeries, Reading, gb_seconds, quantile,
    window_value)
from shoal.domain.metrics import describe
from shoal.domain.traffic import LATENCY_BOUNDS, TrafficMeter

DAY = date(2026, 3, 1)


def _reading(at: float, durations: list[float], seconds: float = 1.0) -> Reading:
    meter = TrafficMeter()
    for duration in durations:
        meter.record("app", "web", DAY, 200, 10, duration)
    tally = meter.take_requests().get(("app", "web"))
    return Reading(at, seconds, tally.requests if tally else 0, tuple(tally.buckets) if tally else ())


def test_the_meter_counts_each_components_requests_apart_from_the_daily_counts() -> None:
    meter = TrafficMeter()
    meter.record("a", "web", DAY, 200, 5, 0.010)
    meter.record("a", "web", DAY, 503, 5, 0.200)
    meter.record("a", "api", DAY, 200, 5, 0.002)
    daily = meter.take()
    assert daily.components["a", "web", DAY].requests == 2  # the store's flush does not drain the sampler's
    tallies = meter.take_requests()
    assert {k: t.requests for k, t in tallies.items()} == {("a", "web"): 2, ("a", "api"): 1}
    assert sum(tallies["a", "web"].buckets) == 2 and len(tallies["a", "web"].buckets) == len(LATENCY_BOUNDS) + 1
    assert meter.take_requests() == {}  # drained
    meter.record("a", "web", DAY, 200, 5, 500.0)  # slower than every bound: the last bucket
    assert meter.take_requests()["a", "web"].buckets[-1] == 1


def test_requests_per_second_divide_by_the_seconds_the_readings_cover() -> None:
    readings = [_reading(1, [0.01] * 10), _reading(2, [0.01] * 20), _reading(4, [0.01] * 30, seconds=2)]
    assert window_value(REQUESTS_PER_SECOND, readings) == 60 / 4  # a late round covers two seconds
    assert window_value(REQUESTS_PER_SECOND, [_reading(1, [])]) == 0  # idle is 0, not unknown
    assert window_value(REQUESTS_PER_SECOND, []) is None


def test_the_p95_is_that_of_all_the_windows_requests_to_within_one_bucket() -> None:
    fast, slow = [0.005] * 90, [0.8] * 10  # 10 % slow: the p95 is among the slow ones
    p95 = window_value(REQUEST_DURATION_P95_MS, [_reading(1, fast), _reading(2, slow)])
    assert p95 is not None and 800 / 1.15 <= p95 <= 800 * 1.15
    p95 = window_value(REQUEST_DURATION_P95_MS, [_reading(1, fast + [0.8] * 4)])
    assert p95 is not None and p95 < 10  # 4 % slow: not the p95
    assert window_value(REQUEST_DURATION_P95_MS, [_reading(1, [])]) is None  # no request, no duration
    assert quantile(0.95, [0] * (len(LATENCY_BOUNDS) + 1)) is None


@pytest.mark.parametrize("duration", [0.0004, 0.003, 0.05, 1.7, 30.0])
def test_one_requests_duration_comes_back_within_its_bucket(duration: float) -> None:
    value = window_value(REQUEST_DURATION_P95_MS, [_reading(1, [duration])])
    assert value is not None and duration * 1000 / 1.16 <= value <= max(duration * 1000 * 1.16, 1.0)


def test_a_series_covers_a_window_from_its_first_reading_and_forgets_old_ones() -> None:
    series = ComponentSeries(keep=10)
    for at in range(5, 30):
        series.add(Reading(float(at), 1.0, at))
    assert series.readings[0].at == 19
    assert [r.at for r in series.within(25, 28)] == [26, 27, 28]  # (start, end]: three one-second intervals
    assert series.covers(20, 1.5) and not series.covers(15, 1.5)


def _activations(at: float, done: Activations, seconds: float = 30.0) -> Reading:
    return Reading(at, seconds, activations=done)


def test_the_functions_rules_over_a_window() -> None:
    one_gb_second = gb_seconds(1024, 1000)
    readings = [_activations(30, Activations(4, 1, 400, 40, 4 * one_gb_second)),
                _activations(60, Activations(6, 2, 1600, 160, 6 * one_gb_second))]
    assert window_value(ACTIVATION_COUNT, readings) == 10
    assert window_value(ERROR_COUNT, readings) == 3
    assert window_value(ERROR_RATE_PER_MINUTE, readings) == 3  # 3 errors in one minute
    assert window_value(AVERAGE_DURATION_MS, readings) == 200
    assert window_value(AVERAGE_WAIT_TIME_MS, readings) == 20
    assert window_value(GB_RATE_PER_SECOND, readings) == pytest.approx(10 / 60)
    idle = [_activations(30, Activations())]
    assert window_value(ACTIVATION_COUNT, idle) == 0 and window_value(AVERAGE_DURATION_MS, idle) is None
    assert gb_seconds(256, 500) == pytest.approx(0.125)


def test_activation_totals_become_an_intervals_growth_and_a_restart_starts_again() -> None:
    first, later = Activations(3, 1, 30, 3, 0.3), Activations(5, 1, 70, 4, 0.5)
    grown = later.since(first)
    assert (grown.count, grown.errors, grown.duration_ms, grown.wait_ms) == (2, 0, 40, 1)
    assert grown.gb_seconds == pytest.approx(0.2)
    assert first.since(None) == first
    assert Activations(1, 0, 10, 1, 0.1).since(later) == Activations(1, 0, 10, 1, 0.1)  # the gateway restarted


def test_component_rules_read_as_doctl_shows_them() -> None:
    assert describe(REQUESTS_PER_SECOND, "GREATER_THAN", 50, "TEN_MINUTES") == "above 50 req/s over 10 minutes"
    assert describe(REQUEST_DURATION_P95_MS, "LESS_THAN", 200, None) == "below 200 ms over 5 minutes"
