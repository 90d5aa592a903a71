"""The forwarder: one lane (a bounded outbox and a sender task) per destination.

``forward`` only appends to a lane's outbox, so a dead or slow destination never holds up the
engine, the app, or the other destinations. Each lane sends batches in order; a failed batch goes
back to the front and is retried with back-off, while new lines queue behind it up to the lane's
limit (the oldest are dropped beyond it and counted per deployment). A lane with nothing to send
for ``IDLE_SECONDS`` closes its connection and goes away; the next line opens a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from shoal.core.aio import within
from shoal.domain.forwarding import Destination, Dropped, Record
from shoal.domain.ports import DeliveryFailed
from shoal.observability.outbox import Backoff, Outbox
from shoal.observability.senders import Sender

log = logging.getLogger("shoal.observability")
BATCH = 500  # lines per request: well under Datadog's 1,000 entries and 5 MB (§4.2)
LIMIT = 10_000  # lines a lane keeps while its destination is failing
IDLE_SECONDS = 300.0
GRACE_SECONDS = 2.0  # at shutdown, how long queued lines get to go out


@dataclass
class _Lane:
    destination: Destination
    sender: Sender
    outbox: Outbox
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    sending: int = 0  # lines of the batch being sent


class Forwarder:
    def __init__(self, senders: Callable[[Destination], Sender], limit: int = LIMIT, batch: int = BATCH,
                 backoff: Callable[[], Backoff] = Backoff) -> None:
        self._senders = senders
        self._limit = limit
        self._batch = batch
        self._backoff = backoff
        self._lanes: dict[Destination, _Lane] = {}
        self._retired: list[Dropped] = []
        self._group: asyncio.TaskGroup | None = None
        self._closing = False  # set when the lanes are told to end: a lane checks it as well as its cancellation
        self.sent = 0  # lines delivered since start (the bench reads it)

    def forward(self, destination: Destination, records: list[Record]) -> None:
        lane = self._lanes.get(destination)
        if lane is None:
            lane = self._lanes[destination] = _Lane(destination, self._senders(destination), Outbox(self._limit))
            self._start(lane)
        lane.outbox.put(records)
        lane.wake.set()

    def dropped(self) -> list[Dropped]:
        found, self._retired = self._retired, []
        for lane in self._lanes.values():
            found += [Dropped(lane.destination, dep, count, why) for dep, count, why in lane.outbox.take_dropped()]
        return found

    def queued(self) -> int:
        """Lines waiting or being sent."""
        return sum(len(lane.outbox) + lane.sending for lane in self._lanes.values())

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self._closing = False
        async with asyncio.TaskGroup() as group:
            self._group = group
            for lane in self._lanes.values():
                self._start(lane)
            await stop.wait()
            deadline = loop.time() + GRACE_SECONDS
            while self.queued() and loop.time() < deadline:
                await asyncio.sleep(0.05)
            self._closing = True
            for lane in list(self._lanes.values()):
                if lane.task is not None:
                    lane.task.cancel()
            self._group = None
        for lane in list(self._lanes.values()):
            lane.outbox.drop(lane.outbox.take(len(lane.outbox)), "shoal stopped before the destination took them")
            await lane.sender.close()

    def _start(self, lane: _Lane) -> None:
        if self._group is not None and lane.task is None:
            lane.task = self._group.create_task(self._drive(lane))

    async def _drive(self, lane: _Lane) -> None:
        backoff = self._backoff()
        # Not only the cancellation ends a lane: a sender's library may swallow one (as Python 3.11's
        # wait_for does when a result is ready at the same moment), and a lane retrying a failing
        # destination would otherwise hold shoal's shutdown for ever.
        while not self._closing:
            if lane.outbox:
                delay = await self._send(lane, backoff)
                if delay:
                    await asyncio.sleep(delay)
                continue
            lane.wake.clear()
            with contextlib.suppress(TimeoutError):
                await within(lane.wake.wait(), IDLE_SECONDS)
            if not lane.outbox:
                await self._retire(lane)
                return

    async def _send(self, lane: _Lane, backoff: Backoff) -> float:
        """Send one batch; the seconds to wait before the next attempt (0 when all is well)."""
        outbox = lane.outbox
        batch = outbox.take(self._batch)
        lane.sending = len(batch)
        try:
            outcome = await lane.sender.send(batch)
        except asyncio.CancelledError:
            outbox.give_back(batch, outbox.failing)  # shoal is stopping: counted with what is left
            raise
        except DeliveryFailed as exc:
            if exc.permanent:
                outbox.drop(batch, exc.message)
                return 0.0
            if not outbox.failing:
                log.warning("log forwarding: %s is failing: %s", lane.destination.label, exc.message)
            outbox.give_back(batch, exc.message)
            return backoff.next()
        finally:
            lane.sending = 0
        if outbox.failing:
            log.info("log forwarding: %s is back", lane.destination.label)
        outbox.failing = ""
        backoff.reset()
        self.sent += len(batch) - len(outcome.retry) - len(outcome.rejected)
        if outcome.rejected:
            outbox.drop(outcome.rejected, outcome.reason)
        if outcome.retry:
            outbox.give_back(outcome.retry, outcome.reason)
            return backoff.next()
        return 0.0

    async def _retire(self, lane: _Lane) -> None:
        if self._lanes.get(lane.destination) is lane:
            del self._lanes[lane.destination]
        self._retired += [Dropped(lane.destination, dep, count, why) for dep, count, why in lane.outbox.take_dropped()]
        await lane.sender.close()
