"""Deployment log lines: buffered in memory, written to the store in batches.

A chatty build must not cost a transaction per line; a crash loses at most one flush interval.
Followers (the live log endpoints) read the store, so they see what has been flushed. Each stored
batch, already masked, is also handed to ``forward`` (log forwarding, ``engine/forwarding.py``).
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
MIN_MASKED = 4
log = logging.getLogger("shoal.engine")


class LogBuffer:
    def __init__(self, write: Callable[[list[LogLine]], None], clock: Clock,
                 forward: Callable[[list[LogLine]], None] | None = None) -> None:
        self._write = write
        self._forward = forward
        self._clock = clock
        self._secrets: dict[str, list[str]] = {}
        self._pending: list[LogLine] = []
        self._lock = threading.Lock()

    def mask(self, deployment_id: str, secrets: list[str]) -> None:
        """Hide these plaintexts in every line of the deployment from now on (longest first, so a
        secret containing another is hidden whole). Very short values would mask ordinary text."""
        self._secrets[deployment_id] = sorted({s for s in secrets if len(s) >= MIN_MASKED}, key=len, reverse=True)

    def _masked(self, deployment_id: str, line: str) -> str:
        for secret in self._secrets.get(deployment_id, ()):
            line = line.replace(secret, "[secret]")
        return line

    def sink(self, deployment_id: str) -> LogSink:
        def log(stage: str, component: str, line: str) -> None:
            text = self._masked(deployment_id, line.rstrip("\n"))
            entry = LogLine(deployment_id, stage, component, self._clock.now(), text)
            with self._lock:
                self._pending.append(entry)

        return log

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self._write(batch)
        except Exception:  # losing a batch of log lines must never stop the engine
            log.exception("could not store %d log lines", len(batch))
        if self._forward is not None:
            try:
                self._forward(batch)
            except Exception:
                log.exception("could not forward %d log lines", len(batch))

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
