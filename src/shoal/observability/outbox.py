"""A destination's queue while it is slow or down: bounded, oldest dropped first, drops counted.

No I/O here: the forwarder takes batches out, gives them back when a send fails, and reports what
was dropped per deployment (so the engine can say so in that deployment's log).
"""

from __future__ import annotations

import random
from collections import deque

from shoal.domain.forwarding import Record


class Outbox:
    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._lines: deque[Record] = deque()
        self._dropped: dict[tuple[str, str], int] = {}  # (deployment id, reason) → count
        self.failing = ""  # why the last send failed; "" while sends succeed

    def __len__(self) -> int:
        return len(self._lines)

    def put(self, records: list[Record]) -> None:
        self._lines.extend(records)
        self._trim()

    def take(self, count: int) -> list[Record]:
        lines = self._lines
        return [lines.popleft() for _ in range(min(count, len(lines)))]

    def give_back(self, records: list[Record], reason: str) -> None:
        """A send failed: the batch goes back to the front, to be retried first."""
        self.failing = reason
        self._lines.extendleft(reversed(records))
        self._trim()

    def drop(self, records: list[Record], reason: str) -> None:
        for record in records:
            key = (record.deployment_id, reason)
            self._dropped[key] = self._dropped.get(key, 0) + 1

    def take_dropped(self) -> list[tuple[str, int, str]]:
        """(deployment id, count, reason) of what was dropped since the last call."""
        found = [(dep, count, reason) for (dep, reason), count in self._dropped.items()]
        self._dropped = {}
        return found

    def _trim(self) -> None:
        excess = len(self._lines) - self.limit
        if excess <= 0:
            return
        why = (f"the destination is failing ({self.failing}) and shoal keeps at most {self.limit} lines for it"
               if self.failing else f"lines came faster than the destination took them (at most {self.limit} wait)")
        self.drop([self._lines.popleft() for _ in range(excess)], why)


class Backoff:
    """Delays between retries: doubling from ``initial`` up to ``cap``, with a little jitter so
    destinations that failed together do not retry in lockstep."""

    def __init__(self, initial: float = 0.5, cap: float = 10.0) -> None:
        self._initial = initial
        self._cap = cap
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._cap, self._next * 2)
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self._next = self._initial
