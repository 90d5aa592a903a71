"""Deployment log lines: masked, buffered in memory, written to the store in batches.

A chatty build must not cost a transaction per line; a crash loses at most one flush interval.
Followers (the live log endpoints) read the store, so they see what has been flushed. Secrets are
masked before a line is stored or split (``masking``): pieces of one long line a runtime had to
cut arrive ``continued`` and are joined here first. Each stored batch, already masked, is also
handed to ``forward`` (log forwarding, ``engine/forwarding.py``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from shoal.core.aio import within
from shoal.core.clock import Clock
from shoal.domain.logs import LogLine
from shoal.engine.masking import MAX_LINE, Masker, split

FLUSH_SECONDS = 0.2
NO_SECRETS = Masker([])
log = logging.getLogger("shoal.engine")


class _Sink:
    """One deployment's ``PieceSink`` (``shoal.domain.ports``)."""

    def __init__(self, buffer: LogBuffer, deployment_id: str) -> None:
        self._buffer, self._deployment_id = buffer, deployment_id

    def __call__(self, stage: str, component: str, line: str) -> None:
        self._buffer.take(self._deployment_id, stage, component, line, continued=False)

    def piece(self, stage: str, component: str, line: str) -> None:
        self._buffer.take(self._deployment_id, stage, component, line, continued=True)


class LogBuffer:
    def __init__(self, write: Callable[[list[LogLine]], None], clock: Clock,
                 forward: Callable[[list[LogLine]], None] | None = None) -> None:
        self._write = write
        self._forward = forward
        self._clock = clock
        self._maskers: dict[str, Masker] = {}
        self._pending: list[LogLine] = []
        # The unmasked start of a line whose rest has not arrived, per (deployment, stage, component).
        self._carry: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()

    def mask(self, deployment_id: str, secrets: list[str]) -> None:
        """Hide these plaintexts (and their encoded forms) in every line of the deployment from now on."""
        self._maskers[deployment_id] = Masker(secrets)

    def masked(self, deployment_id: str, text: str) -> str:
        """``text`` with the deployment's secrets hidden (for failure reasons, which the API shows)."""
        return self._maskers.get(deployment_id, NO_SECRETS).mask(text)

    def sink(self, deployment_id: str) -> _Sink:
        return _Sink(self, deployment_id)

    def take(self, deployment_id: str, stage: str, component: str, line: str, continued: bool) -> None:
        """Queue a line (or, ``continued``, a piece of one whose rest follows) of a deployment."""
        masker = self._maskers.get(deployment_id, NO_SECRETS)
        key = (deployment_id, stage, component)
        with self._lock:
            text = self._carry.pop(key, "") + (line if continued else line.rstrip("\n"))
            if not continued:
                self._queue(deployment_id, stage, component, split(masker.mask(text)))
            elif len(text) < MAX_LINE + masker.longest:
                self._carry[key] = text  # too short to cut safely yet
            else:
                done, rest = masker.cut(text)
                self._queue(deployment_id, stage, component, split(done))
                self._carry[key] = rest

    def _queue(self, deployment_id: str, stage: str, component: str, lines: list[str]) -> None:
        now = self._clock.now()
        self._pending.extend(LogLine(deployment_id, stage, component, now, text) for text in lines)

    def _end_carries(self) -> None:
        """Shoal is stopping: the starts of lines whose rest never came are stored as they are (masked)."""
        with self._lock:
            carries, self._carry = self._carry, {}
            for (deployment_id, stage, component), text in carries.items():
                masker = self._maskers.get(deployment_id, NO_SECRETS)
                self._queue(deployment_id, stage, component, split(masker.mask(text)))

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
                await within(stop.wait(), FLUSH_SECONDS)
            except TimeoutError:
                pass
            await self.flush_async()
        self._end_carries()
        await self.flush_async()
