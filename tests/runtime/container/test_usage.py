"""What instance containers use, read from a real podman: CPU as a rate between two of shoal's own
samples (podman's one-shot stats carry no previous sample), memory as the engine reports it, through
podman's batch call and the compatible per-container call (Docker Engine's path) alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from shoal.runtime.container import containers
from shoal.runtime.container.access import EngineAccess
from shoal.runtime.container.containers import RunSpec
from shoal.runtime.container.engine import Engine
from shoal.runtime.container.session import EngineSession
from shoal.runtime.container.usage import UsageSampler, read

BURN = ["python3", "-c", "x = bytearray(64 << 20)\nwhile True: pass"]  # one busy thread holding 64 MiB


def _run(engine: Engine, name: str, command: list[str], image: str) -> str:
    spec = RunSpec(name=f"shoal-{engine.owner[:8]}-usage-{name}", image=image, labels=engine.labels(role="usage-test"),
                   command=command, memory_bytes=512 << 20, nano_cpus=int(0.5e9))
    return containers.run(engine, spec).id


@pytest.fixture
def burning(engine: Engine, stack_image: str) -> Iterator[list[str]]:
    ids = [_run(engine, "burn", BURN, stack_image), _run(engine, "idle", ["sleep", "600"], stack_image)]
    yield ids
    containers.remove_labelled(engine, grace_seconds=1, role="usage-test")


@pytest.mark.parametrize("batch", [True, False], ids=["libpod-batch", "compatible-api"])
def test_a_busy_container_uses_its_cpu_quota_and_an_idle_one_none(engine: Engine, burning: list[str],
                                                                   batch: bool) -> None:
    busy, idle = burning
    first = read(engine, [busy, idle], batch=batch)
    time.sleep(2)
    second = read(engine, [busy, idle], batch=batch)
    assert set(first) == set(second) == {busy, idle}

    def cpus(container_id: str) -> float:
        a, b = first[container_id], second[container_id]
        return (b.cpu_nanos - a.cpu_nanos) / 1e9 / (b.at - a.at)

    # Limited to half a CPU; a shared machine may give it less, but never what an idle one uses.
    assert 0.05 < cpus(busy) <= 0.6 and cpus(idle) < min(0.02, cpus(busy) / 5)
    assert second[busy].memory_bytes > 64 << 20 > second[idle].memory_bytes > 0


def test_a_container_gone_from_the_batch_leaves_the_others_measured(engine: Engine, burning: list[str]) -> None:
    busy, idle = burning
    containers.remove(engine, idle)  # podman then answers the whole batch with no stats at all
    assert set(read(engine, [busy, idle])) == {busy}
    containers.stop(engine, busy, 1)
    assert read(engine, [busy]) == {}  # a stopped container is not measured


def test_the_sampler_turns_two_rounds_into_a_rate(engine: Engine, burning: list[str]) -> None:
    busy, _ = burning
    access = EngineAccess(lambda: EngineSession(engine), EngineSession(engine))
    sampler = UsageSampler(access, interval=0.5)

    async def scenario() -> None:
        sampler.start(lambda: [busy])
        try:
            for _ in range(100):
                found = sampler.usage(busy)
                if found is not None and found.cpus is not None:
                    break
                await asyncio.sleep(0.1)
            assert found is not None and found.cpus is not None and 0.05 < found.cpus <= 0.6
            assert sampler.usage("no-such-container") is None
        finally:
            await sampler.close()

    try:
        asyncio.run(scenario())
    finally:
        access.close()
