"""Flushing the ingress's traffic counts from memory to the store.

The meter lives on the event loop (the ingress records into it there), so counts are taken there
and only the write goes to a thread. A write that fails puts its counts back, to be tried with the
next flush: the ingress never waits on the database, and a database outage loses no counts while
the process lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from shoal.core.aio import within
from shoal.domain.ports import TrafficStore
from shoal.domain.traffic import TrafficMeter

FLUSH_EVERY = 5.0  # seconds

log = logging.getLogger("shoal.traffic")


async def flush_traffic(meter: TrafficMeter, store: TrafficStore) -> bool:
    """Write what the meter counted since the last flush; False if it was put back instead."""
    counts = meter.take()
    if not counts.bandwidth and not counts.components:
        return True
    try:
        await asyncio.to_thread(store.add_traffic, counts)
    except Exception:  # whatever the store raised: the flusher must outlive it, or the server stops
        log.exception("could not write traffic counts; keeping them for the next flush")
        meter.restore(counts)
        return False
    return True


@contextlib.asynccontextmanager
async def flushing_traffic(meter: TrafficMeter, store: TrafficStore,
                           every: float = FLUSH_EVERY) -> AsyncIterator[None]:
    """Flush every ``every`` seconds while the block runs, and once more when it has ended
    (wrapped around the listeners, that last flush holds their last requests)."""
    done = asyncio.Event()

    async def flush_until_done() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await within(done.wait(), every)
            if not done.is_set():
                await flush_traffic(meter, store)

    flusher = asyncio.create_task(flush_until_done())  # owned here: awaited on the way out
    try:
        yield
    finally:
        done.set()
        await flusher  # ends between flushes, never in the middle of a write
        await flush_traffic(meter, store)
