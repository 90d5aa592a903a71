"""Instance metrics as values: samples over time, what a rule's window makes of them, and what the
autoscaler wants (pure; the engine samples, the runtime measures).

A metric rule (``CPU_UTILIZATION``, ``MEM_UTILIZATION``, ``RESTART_COUNT``; do-runtime-reference.md
§5.1) holds for a component when it holds for one of its instances over the whole window: the
mean CPU or memory percentage of the window's samples, or the restarts within it, compared with
``value`` by ``operator``. An instance younger than the window is not judged yet, so a rule fires
only after its window. The autoscaler follows Kubernetes' HPA (§7, inferred): desired =
ceil(current × observed / target), within the bounds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from shoal.domain import component_metrics

CPU_UTILIZATION, MEM_UTILIZATION, RESTART_COUNT = "CPU_UTILIZATION", "MEM_UTILIZATION", "RESTART_COUNT"
METRIC_RULES = (CPU_UTILIZATION, MEM_UTILIZATION, RESTART_COUNT)
WINDOWS = {"FIVE_MINUTES": 300.0, "TEN_MINUTES": 600.0, "THIRTY_MINUTES": 1800.0, "ONE_HOUR": 3600.0}
LONGEST_WINDOW = max(WINDOWS.values())
# Every rule judged on a threshold over a window: the instance rules here, the component ones there.
THRESHOLD_RULES = METRIC_RULES + component_metrics.COMPONENT_RULES
NOUNS = {CPU_UTILIZATION: "CPU utilization", MEM_UTILIZATION: "memory utilization", RESTART_COUNT: "restarts",
         **component_metrics.NOUNS}
UNITS = {CPU_UTILIZATION: " %", MEM_UTILIZATION: " %", RESTART_COUNT: "", **component_metrics.UNITS}


@dataclass(frozen=True)
class Sample:
    at: float  # Unix seconds
    cpu_percent: float | None
    memory_percent: float | None
    restarts: int


class Series:
    """One instance's samples, oldest first, kept for ``keep`` seconds."""

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self.samples: deque[Sample] = deque()

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        while self.samples and self.samples[0].at < sample.at - self.keep:
            self.samples.popleft()

    def within(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]

    def covers(self, start: float, slack: float) -> bool:
        """Whether it has samples from the window's start on (give or take one sampling interval)."""
        return bool(self.samples) and self.samples[0].at <= start + slack


def window_value(rule: str, series: Series, start: float, end: float) -> float | None:
    samples = series.within(start, end)
    if not samples:
        return None
    if rule == RESTART_COUNT:
        before = [s for s in series.samples if s.at <= start]
        first = before[-1] if before else samples[0]
        return float(samples[-1].restarts - first.restarts)
    values = [v for v in (s.cpu_percent if rule == CPU_UTILIZATION else s.memory_percent for s in samples)
              if v is not None]
    return sum(values) / len(values) if values else None


def holds(operator: str | None, value: float, threshold: float) -> bool:
    return value < threshold if operator == "LESS_THAN" else value > threshold


def window_seconds(window: str | None, scale: float = 1.0) -> float:
    return WINDOWS.get(window or "", WINDOWS["FIVE_MINUTES"]) * scale


def describe(rule: str, operator: str | None, threshold: float, window: str | None) -> str:
    """``above 75 % over 10 minutes``: how doctl shows such a rule, in words."""
    side = "below" if operator == "LESS_THAN" else "above"
    span = {"FIVE_MINUTES": "5 minutes", "TEN_MINUTES": "10 minutes", "THIRTY_MINUTES": "30 minutes",
            "ONE_HOUR": "1 hour"}.get(window or "", "5 minutes")
    return f"{side} {threshold:g}{UNITS[rule]} over {span}"


def desired_instances(current: int, observed: float, target: float, low: int, high: int) -> int:
    """The HPA rule: enough instances for ``observed`` (the mean) to come down to ``target``."""
    if current <= 0:
        return max(low, 1)
    wanted = math.ceil(current * observed / max(target, 1e-9) - 1e-9)
    return max(low, min(high, wanted))
