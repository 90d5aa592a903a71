"""What each instance container uses: CPU and memory, read from the engine in the background.

Role: the container runtime's counterpart of the local runtime's cgroup meter. A sampler task
asks the engine, every ``interval`` seconds, for the stats of every instance container shoal
supervises, and keeps the latest figures per container; ``instances()`` (called by ``/health``,
``/instances`` and the metrics sampler, off and on the event loop) only reads them, so its cost
does not grow with a stats round trip per container.

Why the details: podman's compatible ``/containers/{id}/stats?stream=false`` answers with an
empty ``precpu_stats`` (no previous sample to subtract), so CPU is the difference of the
cumulative CPU nanoseconds between two of shoal's own samples over the time between them — for
every engine alike. On podman one libpod call (``/libpod/containers/stats?containers=...``)
answers for all containers at once (a fifth of the cost of one call per container at 10–20, measured in
``bench/container_usage.py``); if one of them went away meanwhile podman answers ``Stats: null``
for the whole batch, and each is then asked alone. Docker Engine is asked per container with
``one_shot`` (no second sample waited for). Memory is what the engine reports as the container's
usage (``podman stats``' MEM USAGE; Docker's less its page cache, as ``docker stats`` shows it).

Must not: block the event loop (every engine call runs in the engine's thread pool) or keep
figures of containers that are gone (each round keeps only the ones it was asked about).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shoal.runtime.container.access import EngineAccess
from shoal.runtime.container.engine import Engine

log = logging.getLogger("shoal.runtime.container")
SAMPLE_SECONDS = 1.0


@dataclass(frozen=True)
class Reading:
    """One container's cumulative figures at one moment."""

    at: float  # time.monotonic() of the read
    cpu_nanos: int  # CPU time since the container started
    memory_bytes: int


@dataclass(frozen=True)
class Usage:
    cpus: float | None  # CPUs busy on average between the last two samples; None after only one
    memory_bytes: int


def read(engine: Engine, ids: list[str], batch: bool | None = None) -> dict[str, Reading]:
    """Each running container's figures now (a stopped or vanished one is left out). ``batch``: one
    libpod call for all (podman only; the default there), else the compatible API per container."""
    if not ids:
        return {}
    if engine.is_podman if batch is None else batch:
        found = _libpod(engine, ids)
        if found is None:  # one of them is gone: the batch fails whole
            found = {}
            for container_id in ids:
                found.update(_libpod(engine, [container_id]) or {})
        return found
    return {i: r for i in ids if (r := _compat(engine, i)) is not None}


def _libpod(engine: Engine, ids: list[str]) -> dict[str, Reading] | None:
    answer = engine.api.get(f"{engine.api.base_url}/v4.0.0/libpod/containers/stats",
                            params={"stream": "false", "containers": ids})
    now = time.monotonic()
    if answer.status_code >= 400:
        return None
    stats = answer.json().get("Stats")
    if stats is None:
        return None
    found = {}
    for item in stats:
        cpu, memory = int(item.get("CPUNano") or 0), int(item.get("MemUsage") or 0)
        if cpu or memory:  # a container that is not running answers with zeros
            found[str(item.get("ContainerID"))] = Reading(now, cpu, memory)
    return found


def _compat(engine: Engine, container_id: str) -> Reading | None:
    try:
        stats: Mapping[str, Any] = engine.api.stats(container_id, stream=False, one_shot=True)
    except Exception:  # gone, or not running (podman answers an empty body)
        return None
    now = time.monotonic()
    cpu = int(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0)
    memory = stats.get("memory_stats") or {}
    usage = int(memory.get("usage") or 0)
    detail = memory.get("stats") or {}
    cache = int(detail.get("total_inactive_file", detail.get("inactive_file", 0)) or 0)
    if not cpu and not usage:
        return None
    return Reading(now, cpu, max(0, usage - cache))


class UsageSampler:
    """The latest usage of each container, refreshed by ``run`` in the background."""

    def __init__(self, access: EngineAccess, interval: float = SAMPLE_SECONDS) -> None:
        self._access = access
        self.interval = interval
        self._last: dict[str, Reading] = {}
        self._usage: dict[str, Usage] = {}
        self._task: asyncio.Task[None] | None = None

    def usage(self, container_id: str | None) -> Usage | None:
        return self._usage.get(container_id) if container_id else None

    def start(self, containers: Callable[[], Iterable[str]]) -> None:
        """Sample ``containers()`` (the ids to measure now) every interval, from now until ``close``."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(containers), name="container usage")

    async def _run(self, containers: Callable[[], Iterable[str]]) -> None:
        while True:
            try:
                await self.sample(list(containers()))
            except Exception:  # the engine is not answering now: the next round tries again
                log.debug("could not sample container usage", exc_info=True)
            await asyncio.sleep(self.interval)

    async def sample(self, ids: list[str]) -> None:
        """One round: read every container and turn the change since the last round into a rate."""
        readings = await self._access.call(read, ids) if ids else {}
        usage = {}
        for container_id, now in readings.items():
            before = self._last.get(container_id)
            cpus = None
            if before is not None and now.at > before.at and now.cpu_nanos >= before.cpu_nanos:
                cpus = (now.cpu_nanos - before.cpu_nanos) / 1e9 / (now.at - before.at)
            usage[container_id] = Usage(cpus, now.memory_bytes)
        self._last, self._usage = readings, usage

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
