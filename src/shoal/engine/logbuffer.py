"""Deployment log lines: buffered in memory, written to the store in batches.

A chatty build must not cost a transaction per line; a crash loses at most one flush interval.
Followers (the live log endpoints) read the store, so they see what has been flushed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from shoal.core.clock import Clock
from shoal.domain.logs import LogLine
from shoal.domain.ports import LogSink

FLUSH_SECONDS = 0.2
log = logging.getLogger("shoal.engine")


class LogBuffer:
    def __init__(self, write: Callable[[list[LogLine]], None], clock: Clock,
                 mask: Callable[[str], str] = lambda line: line) -> None:
        self._write = write
        self._clock = clock
        self._mask = mask
        self._pending: list[LogLine] = []
        self._lock = threading.Lock()

    def sink(self, deployment_id: str) -> LogSink:
        def log(stage: str, component: str, line: str) -> None:
            entry = LogLine(deployment_id, stage, component, self._clock.now(), self._mask(line.rstrip("\n")))
            with self._lock:
                self._pending.append(entry)

        return log

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        try:
            self._write(batch)
        except Exception:  # losing a batch of log lines must never stop the engine
            log.exception("could not store %d log lines", len(batch))

    async def flush_async(self) -> None:
        await asyncio.to_thread(self.flush)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every interval until ``stop`` is set, then once more."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), FLUSH_SECONDS)
            except TimeoutError:
                pass
            await self.flush_async()
