"""Traffic counters: what the ingress served, per app and UTC day (bytes out) and per component
(requests, errors, latency).

Role: accumulate in memory, cheaply, on the ingress's hot path. It must not write anywhere:
whoever owns storage takes the counts with ``take()`` and persists them (bootstrap flushes them
to the store every few seconds), and reads add ``pending()`` for what is not flushed yet.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date


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


@dataclass(frozen=True)
class TrafficCounts:
    """Counts since the last ``take``: bytes out per (app, day) and traffic per (app, component, day)."""

    bandwidth: dict[tuple[str, date], int]
    components: dict[tuple[str, str, date], ComponentTraffic]


class TrafficMeter:
    def __init__(self) -> None:
        self._bandwidth: defaultdict[tuple[str, date], int] = defaultdict(int)
        self._components: defaultdict[tuple[str, str, date], ComponentTraffic] = defaultdict(ComponentTraffic)

    def record(self, app_id: str, component: str, day: date, status: int, bytes_out: int, seconds: float) -> None:
        self._bandwidth[app_id, day] += bytes_out
        counts = self._components[app_id, component, day]
        counts.requests += 1
        counts.bytes_out += bytes_out
        counts.seconds += seconds
        if status >= 500:
            counts.errors += 1

    def take(self) -> TrafficCounts:
        """Everything counted so far, leaving the meter empty."""
        taken = TrafficCounts(dict(self._bandwidth), dict(self._components))
        self._bandwidth = defaultdict(int)
        self._components = defaultdict(ComponentTraffic)
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
