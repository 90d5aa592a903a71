"""Traffic counters: what the ingress served, per app and UTC day (bytes out) and per component
(requests, errors, latency).

Role: accumulate in memory, cheaply, on the ingress's hot path. It must not write anywhere:
whoever owns storage takes the counts with ``take()`` and persists them (bootstrap flushes them
to the store every few seconds), and reads add ``pending()`` for what is not flushed yet.

Beside the daily counts, each component's requests since the metrics sampler last looked
(``take_requests()``): a count and a histogram of durations, which the request alert rules
(``REQUESTS_PER_SECOND``, ``REQUEST_DURATION_P95_MS``) are judged on. The two readers drain
separately, so neither disturbs the other.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Final

# Upper bounds (seconds) of the request-duration histogram's buckets: 1 ms, then each 15 % above
# the last, up to ~71 s; one more bucket holds everything slower. A fixed histogram rather than a
# sample of durations: it costs the same few hundred bytes per component at any request rate, a
# record is one bisect and one increment on the hot path, and histograms of consecutive sampling
# intervals add up, so a window's p95 is that of all the window's requests (to within one bucket,
# under 15 %) — a bounded sample per interval cannot be merged without weighting it wrongly.
LATENCY_BOUNDS: Final[tuple[float, ...]] = tuple(0.001 * 1.15 ** i for i in range(81))


@dataclass
class ComponentTraffic:
    requests: int = 0
    errors: int = 0  # 5xx answers, the ingress's own included
    bytes_out: int = 0
    seconds: float = 0.0  # summed latency: mean = seconds / requests

    def add(self, other: ComponentTraffic) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.bytes_out += other.bytes_out
        self.seconds += other.seconds


class RequestTally:
    """One component's requests since the last ``take_requests``: how many, and their durations
    as counts per ``LATENCY_BOUNDS`` bucket (the last one: slower than every bound)."""

    def __init__(self) -> None:
        self.requests = 0
        self.buckets: list[int] = [0] * (len(LATENCY_BOUNDS) + 1)

    def add(self, seconds: float) -> None:
        self.requests += 1
        self.buckets[bisect_left(LATENCY_BOUNDS, seconds)] += 1


@dataclass(frozen=True)
class TrafficCounts:
    """Counts since the last ``take``: bytes out per (app, day) and traffic per (app, component, day)."""

    bandwidth: dict[tuple[str, date], int]
    components: dict[tuple[str, str, date], ComponentTraffic]


class TrafficMeter:
    def __init__(self) -> None:
        self._bandwidth: defaultdict[tuple[str, date], int] = defaultdict(int)
        self._components: defaultdict[tuple[str, str, date], ComponentTraffic] = defaultdict(ComponentTraffic)
        self._requests: dict[tuple[str, str], RequestTally] = {}

    def record(self, app_id: str, component: str, day: date, status: int, bytes_out: int, seconds: float) -> None:
        self._bandwidth[app_id, day] += bytes_out
        counts = self._components[app_id, component, day]
        counts.requests += 1
        counts.bytes_out += bytes_out
        counts.seconds += seconds
        if status >= 500:
            counts.errors += 1
        tally = self._requests.get((app_id, component))
        if tally is None:
            tally = self._requests[app_id, component] = RequestTally()
        tally.add(seconds)

    def take(self) -> TrafficCounts:
        """Everything counted so far, leaving the meter empty."""
        taken = TrafficCounts(dict(self._bandwidth), dict(self._components))
        self._bandwidth = defaultdict(int)
        self._components = defaultdict(ComponentTraffic)
        return taken

    def take_requests(self) -> dict[tuple[str, str], RequestTally]:
        """Each (app, component)'s requests since the last call, leaving none: the metrics
        sampler's reading (apart from ``take``, which the store's flusher drains)."""
        taken, self._requests = self._requests, {}
        return taken

    def restore(self, counts: TrafficCounts) -> None:
        """Put back counts a flush could not write, so they are tried again."""
        for key, value in counts.bandwidth.items():
            self._bandwidth[key] += value
        for ckey, traffic in counts.components.items():
            self._components[ckey].add(traffic)

    def pending(self, app_id: str, day: date) -> int:
        """Bytes out of ``app_id`` on ``day`` not yet taken."""
        return self._bandwidth.get((app_id, day), 0)
