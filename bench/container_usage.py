"""What measuring instance containers costs: ``ContainerRuntime.instances()`` with usage beside the
engine listing it did alone before, and one background sampling round by podman's batch call beside
one compatible stats call per container (what ``instances()`` would pay if it read stats inline).

A real podman, the stack image, one Python service scaled to N instance containers by the runtime
itself (``InstanceScaler.scale``); medians of repeated calls in the same run. Removes what it made.

    python bench/container_usage.py [N ...]     # default: 1 10 20
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoal.ingress.table import RouteTable
from shoal.runtime.container import containers
from shoal.runtime.container.usage import read
from tests.e2e.apps import PY_SERVER, make_repo
from tests.runtime.test_conformance import BACKENDS, IN_CONTAINER, PODMAN, Backend, deploy, plan_of, spec
from tests.containers import clean

ROUNDS = 30


def _median_ms(fn: Callable[[], Any], rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


async def _rows(backend: Backend, counts: list[int]) -> list[tuple[int, float, float, float, float]]:
    runtime: Any = backend.runtime
    plan = await deploy(backend, plan_of({**spec(backend, instance_count=1), "workers": [], "jobs": []}))
    engine = PODMAN.session.engine
    rows = []
    for count in counts:
        await runtime.scale(plan, plan.unit("web"), count, backend.log)
        await asyncio.sleep(2.5)  # two sampling rounds: every instance has a CPU rate
        states = await asyncio.to_thread(runtime.instances, "app-1")
        assert len(states) == count and all(s.cpu_percent is not None for s in states), states
        ids = [f.id for f in containers.listed(engine, app="app-1") if f.running]
        with_usage = await asyncio.to_thread(_median_ms, lambda: runtime.instances("app-1"))
        listing = await asyncio.to_thread(_median_ms, lambda: containers.listed(engine, app="app-1"))
        batch = await asyncio.to_thread(_median_ms, lambda: read(engine, ids, batch=True), 10)
        each = await asyncio.to_thread(_median_ms, lambda: read(engine, ids, batch=False), 10)
        rows.append((count, with_usage, listing, batch, each))
    return rows


def main(counts: list[int]) -> None:
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-usage-"))
    routes = RouteTable()
    repo = make_repo(root / "repo", {"server.py": PY_SERVER})
    python, env = IN_CONTAINER["container"]
    backend = Backend("container", BACKENDS["container"](root, routes), routes, repo, python, env)

    async def run() -> list[tuple[int, float, float, float, float]]:
        try:
            return await _rows(backend, counts)
        finally:
            await backend.runtime.close()

    try:
        rows = asyncio.run(run())
    finally:
        if PODMAN.session is not None:
            clean(PODMAN.session, PODMAN.before)
    print(f"{'containers':>10}  {'instances() ms':>14}  {'listing alone ms':>16}  "
          f"{'sample: batch ms':>16}  {'sample: per container ms':>24}")
    for count, with_usage, listing, batch, each in rows:
        print(f"{count:>10}  {with_usage:>14.1f}  {listing:>16.1f}  {batch:>16.1f}  {each:>24.1f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 10, 20])
