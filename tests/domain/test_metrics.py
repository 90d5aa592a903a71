"""Metric rules as values: windows over samples, thresholds, and the autoscaler's arithmetic."""

from __future__ import annotations

from shoal.domain.metrics import (CPU_UTILIZATION, MEM_UTILIZATION, RESTART_COUNT, Sample, Series, describe,
                                  desired_instances, holds, window_seconds, window_value)


def _series(*points: tuple[float, float | None, int]) -> Series:
    series = Series(keep=100)
    for at, cpu, restarts in points:
        series.add(Sample(at, cpu, (cpu or 0) / 2, restarts))
    return series


def test_cpu_and_memory_are_the_mean_of_the_windows_samples() -> None:
    series = _series((0, 90, 0), (10, 10, 0), (20, 30, 0), (30, None, 0))
    assert window_value(CPU_UTILIZATION, series, 10, 30) == 20  # a sample without a figure is left out
    assert window_value(MEM_UTILIZATION, series, 0, 20) == (45 + 5 + 15) / 3
    assert window_value(CPU_UTILIZATION, series, 40, 50) is None


def test_restarts_are_counted_from_just_before_the_window() -> None:
    series = _series((0, 1, 0), (10, 1, 2), (20, 1, 3), (30, 1, 7))
    assert window_value(RESTART_COUNT, series, 15, 30) == 5  # 2 before the window, 7 at its end
    assert window_value(RESTART_COUNT, series, 0, 30) == 7


def test_a_series_covers_a_window_only_from_its_start_and_forgets_what_is_too_old() -> None:
    series = Series(keep=30)
    for at in range(0, 100, 10):
        series.add(Sample(float(at), 1, 1, 0))
    assert [s.at for s in series.samples] == [60, 70, 80, 90]
    assert series.covers(60, slack=1) and not series.covers(40, slack=1) and series.covers(55, slack=6)


def test_thresholds_windows_and_their_words() -> None:
    assert holds("GREATER_THAN", 80.1, 80) and not holds("GREATER_THAN", 80, 80) and holds(None, 90, 80)
    assert holds("LESS_THAN", 5, 10) and not holds("LESS_THAN", 10, 10)
    assert window_seconds("TEN_MINUTES") == 600 and window_seconds(None) == 300
    assert window_seconds("ONE_HOUR", 0.01) == 36
    assert describe(CPU_UTILIZATION, "GREATER_THAN", 75, "TEN_MINUTES") == "above 75 % over 10 minutes"
    assert describe(RESTART_COUNT, "LESS_THAN", 3, None) == "below 3 over 5 minutes"


def test_desired_instances_follow_the_hpa_rule_within_the_bounds() -> None:
    assert desired_instances(1, 100, 20, 1, 3) == 3  # would be 5
    assert desired_instances(2, 40, 40, 1, 5) == 2  # on target: unchanged
    assert desired_instances(3, 10, 50, 1, 5) == 1
    assert desired_instances(4, 0, 50, 2, 5) == 2  # never below the minimum
    assert desired_instances(2, 41, 40, 1, 5) == 3  # just over target needs one more
    assert desired_instances(0, 0, 50, 2, 5) == 2
