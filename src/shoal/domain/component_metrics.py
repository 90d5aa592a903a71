"""Component metrics as values: what a whole component did in each sampling interval — requests
the ingress served it, activations its functions ran — and what a rule's window makes of that (pure;
the engine samples, the ingress and the runtime count).

Unlike the instance rules (``domain.metrics``), these are judged on the component: DigitalOcean's
rules are "requests per second" and "p95 request duration" of a service, "activation count" and the
like of a functions component (do-runtime-reference.md §5.1, inferred). A window's value is over
every reading that ended within it, divided by the seconds those readings really cover (a loaded
machine samples late; dividing by the nominal window would then overstate a rate):

- ``REQUESTS_PER_SECOND``: requests / seconds.
- ``REQUEST_DURATION_P95_MS``: the 95th percentile of the window's request durations, from the
  merged histograms (``domain.traffic.LATENCY_BOUNDS``), interpolated within its bucket as
  Prometheus' ``histogram_quantile`` does; none without requests (nothing was slow or fast).
- ``FUNCTIONS_ACTIVATION_COUNT`` / ``FUNCTIONS_ERROR_COUNT``: activations / failed ones in the window.
- ``FUNCTIONS_AVERAGE_DURATION_MS`` / ``FUNCTIONS_AVERAGE_WAIT_TIME_MS``: mean run time / mean wait
  (queueing and cold start) per activation; none without activations.
- ``FUNCTIONS_ERROR_RATE_PER_MINUTE``: errors × 60 / seconds.
- ``FUNCTIONS_GB_RATE_PER_SECOND``: Σ(memory GB × duration s) / seconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from shoal.domain.traffic import LATENCY_BOUNDS

REQUESTS_PER_SECOND, REQUEST_DURATION_P95_MS = "REQUESTS_PER_SECOND", "REQUEST_DURATION_P95_MS"
REQUEST_RULES = (REQUESTS_PER_SECOND, REQUEST_DURATION_P95_MS)
ACTIVATION_COUNT, AVERAGE_DURATION_MS = "FUNCTIONS_ACTIVATION_COUNT", "FUNCTIONS_AVERAGE_DURATION_MS"
ERROR_RATE_PER_MINUTE, AVERAGE_WAIT_TIME_MS = "FUNCTIONS_ERROR_RATE_PER_MINUTE", "FUNCTIONS_AVERAGE_WAIT_TIME_MS"
ERROR_COUNT, GB_RATE_PER_SECOND = "FUNCTIONS_ERROR_COUNT", "FUNCTIONS_GB_RATE_PER_SECOND"
FUNCTION_RULES = (ACTIVATION_COUNT, AVERAGE_DURATION_MS, ERROR_RATE_PER_MINUTE, AVERAGE_WAIT_TIME_MS, ERROR_COUNT,
                  GB_RATE_PER_SECOND)
COMPONENT_RULES = REQUEST_RULES + FUNCTION_RULES
NOUNS = {REQUESTS_PER_SECOND: "requests per second", REQUEST_DURATION_P95_MS: "p95 request duration",
         ACTIVATION_COUNT: "activations", AVERAGE_DURATION_MS: "average activation duration",
         ERROR_RATE_PER_MINUTE: "activation errors per minute", AVERAGE_WAIT_TIME_MS: "average activation wait",
         ERROR_COUNT: "activation errors", GB_RATE_PER_SECOND: "GB-seconds per second"}
UNITS = {REQUESTS_PER_SECOND: " req/s", REQUEST_DURATION_P95_MS: " ms", ACTIVATION_COUNT: "",
         AVERAGE_DURATION_MS: " ms", ERROR_RATE_PER_MINUTE: "/min", AVERAGE_WAIT_TIME_MS: " ms", ERROR_COUNT: "",
         GB_RATE_PER_SECOND: " GB-s/s"}


@dataclass(frozen=True)
class Activations:
    """Function activations: totals since a gateway started (what the runtime reports), or the
    difference of two such totals (one interval's)."""

    count: int = 0
    errors: int = 0
    duration_ms: float = 0.0  # summed
    wait_ms: float = 0.0  # summed
    gb_seconds: float = 0.0  # Σ memory limit in GB × duration in s
    source: str = ""  # which counter (gateway) these totals are of

    def since(self, earlier: Activations | None) -> Activations:
        """This total's growth since ``earlier``; all of it when it is another counter's (a new
        gateway, a new deployment's) or the counter went back (restarted)."""
        if earlier is None or earlier.source != self.source or self.count < earlier.count:
            return self
        return Activations(self.count - earlier.count, self.errors - earlier.errors,
                           self.duration_ms - earlier.duration_ms, self.wait_ms - earlier.wait_ms,
                           self.gb_seconds - earlier.gb_seconds, self.source)


@dataclass(frozen=True)
class Reading:
    """One component over one sampling interval, which ended at ``at`` and lasted ``seconds``."""

    at: float  # Unix seconds
    seconds: float
    requests: int = 0
    latency: tuple[int, ...] = ()  # counts per LATENCY_BOUNDS bucket (and one past the last); () when none
    activations: Activations = field(default_factory=Activations)


class ComponentSeries:
    """One component's readings, oldest first, kept for ``keep`` seconds."""

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self.readings: deque[Reading] = deque()

    def add(self, reading: Reading) -> None:
        self.readings.append(reading)
        while self.readings and self.readings[0].at < reading.at - self.keep:
            self.readings.popleft()

    def within(self, start: float, end: float) -> list[Reading]:
        """The readings that ended in (start, end]: the intervals the window is made of."""
        return [r for r in self.readings if start < r.at <= end]

    def covers(self, start: float, slack: float) -> bool:
        """Whether it has readings from the window's start on (give or take one sampling interval)."""
        return bool(self.readings) and self.readings[0].at <= start + slack


def quantile(q: float, buckets: Sequence[int]) -> float | None:
    """The ``q`` quantile (seconds) of durations counted per LATENCY_BOUNDS bucket; None if none."""
    total = sum(buckets)
    if total == 0:
        return None
    rank, below = q * total, 0
    for index, count in enumerate(buckets):
        if count and below + count >= rank:
            if index >= len(LATENCY_BOUNDS):  # slower than every bound: the last bound is all we know
                return LATENCY_BOUNDS[-1]
            lower = LATENCY_BOUNDS[index - 1] if index else 0.0
            return lower + (LATENCY_BOUNDS[index] - lower) * (rank - below) / count
        below += count
    return LATENCY_BOUNDS[-1]


def merged(readings: Sequence[Reading]) -> list[int]:
    total = [0] * (len(LATENCY_BOUNDS) + 1)
    for reading in readings:
        for index, count in enumerate(reading.latency):
            total[index] += count
    return total


def window_value(rule: str, readings: Sequence[Reading]) -> float | None:
    """``rule``'s value over a window made of ``readings`` (``within``); None when it has none."""
    seconds = sum(r.seconds for r in readings)
    if not readings or seconds <= 0:
        return None
    if rule == REQUESTS_PER_SECOND:
        return sum(r.requests for r in readings) / seconds
    if rule == REQUEST_DURATION_P95_MS:
        p95 = quantile(0.95, merged(readings))
        return None if p95 is None else p95 * 1000
    done = Activations(sum(r.activations.count for r in readings), sum(r.activations.errors for r in readings),
                       sum(r.activations.duration_ms for r in readings), sum(r.activations.wait_ms for r in readings),
                       sum(r.activations.gb_seconds for r in readings))
    return _functions_value(rule, done, seconds)


def _functions_value(rule: str, done: Activations, seconds: float) -> float | None:
    if rule == ACTIVATION_COUNT:
        return float(done.count)
    if rule == ERROR_COUNT:
        return float(done.errors)
    if rule == ERROR_RATE_PER_MINUTE:
        return done.errors * 60 / seconds
    if rule == GB_RATE_PER_SECOND:
        return done.gb_seconds / seconds
    if rule in (AVERAGE_DURATION_MS, AVERAGE_WAIT_TIME_MS) and done.count:
        return (done.duration_ms if rule == AVERAGE_DURATION_MS else done.wait_ms) / done.count
    return None


def counted(totals: Activations, memory_mb: int, duration_ms: float, wait_ms: float, error: bool) -> Activations:
    """``totals`` with one more activation."""
    return Activations(totals.count + 1, totals.errors + int(error), totals.duration_ms + duration_ms,
                       totals.wait_ms + wait_ms, totals.gb_seconds + gb_seconds(memory_mb, duration_ms), totals.source)


def activations_record(totals: Activations) -> dict[str, float | int | str]:
    return {"count": totals.count, "errors": totals.errors, "duration_ms": totals.duration_ms,
            "wait_ms": totals.wait_ms, "gb_seconds": totals.gb_seconds, "source": totals.source}


def activations_from_record(data: dict[str, object]) -> Activations:
    def number(key: str) -> float:
        value = data.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    return Activations(int(number("count")), int(number("errors")), number("duration_ms"), number("wait_ms"),
                       number("gb_seconds"), str(data.get("source") or ""))


def gb_seconds(memory_mb: int, duration_ms: float) -> float:
    """What one activation costs in DigitalOcean's unit: its memory limit in GB × its run time in s
    (1 GB = 1024 MB, as the functions pricing counts it)."""
    return memory_mb / 1024 * max(duration_ms, 0.0) / 1000
