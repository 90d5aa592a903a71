"""The local runtime as an InstanceScaler: real processes added to and removed from a published service,
put to sleep and woken through the upstream's hook (what the ingress calls), and each instance's CPU
and memory in ``instances``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shoal.domain.ports import InstanceScaler
from shoal.domain.routing import Upstream
from shoal.ingress.table import RouteTable
from tests.e2e.apps import PY_SERVER, make_repo
from tests.runtime.aio import run_async
from tests.runtime.test_conformance import BACKENDS, Backend, deploy, plan_of, spec


def _local(tmp_path: Path) -> Backend:
    routes = RouteTable()
    repo = make_repo(tmp_path / "repo", {"server.py": PY_SERVER, "worker.py": "import time\nwhile True: time.sleep(1)\n",
                                          "job.py": "import sys; sys.exit(0)\n"})
    return Backend("local", BACKENDS["local"](tmp_path, routes), routes, repo)


def _upstream(backend: Backend) -> Upstream:
    app = backend.routes.lookup("shop.example.test")
    assert app is not None
    found = app.backends["web"]
    assert isinstance(found, Upstream)
    return found


def _web(backend: Backend) -> list[str]:
    return sorted(s.name for s in backend.runtime.instances("app-1") if s.component == "web")


@run_async
async def test_instances_join_and_leave_the_published_service(tmp_path: Path) -> None:
    backend = _local(tmp_path)
    runtime = backend.runtime
    assert isinstance(runtime, InstanceScaler)
    try:
        plan = await deploy(backend, plan_of(spec(backend, instance_count=1)))
        web = plan.unit("web")
        upstream = _upstream(backend)
        assert len(upstream.addresses) == 1
        assert await runtime.scale(plan, web, 3, backend.log) == 3
        assert len(_web(backend)) == 3 and len(set(upstream.addresses)) == 3 and not upstream.down
        states = [s for s in runtime.instances("app-1") if s.component == "web"]
        assert all(s.memory_bytes and s.memory_bytes > 0 for s in states)
        await asyncio.sleep(1.2)  # CPU is a rate over a second or more
        assert all(s.cpu_percent is not None for s in runtime.instances("app-1") if s.component == "web")
        assert await runtime.scale(plan, web, 1, backend.log) == 1
        assert _web(backend) == ["shop-web-0a1b2c3d-0"] and len(upstream.addresses) == 1
        assert any("stopped instance shop-web-0a1b2c3d-2" in line for _, _, line in backend.lines)
    finally:
        await runtime.close()


@run_async
async def test_a_sleeping_service_is_woken_by_its_upstream_and_is_not_idle_while_it_wakes(tmp_path: Path) -> None:
    backend = _local(tmp_path)
    runtime = backend.runtime
    assert isinstance(runtime, InstanceScaler)
    try:
        plan = await deploy(backend, plan_of(spec(backend, instance_count=1)))
        web = plan.unit("web")
        upstream = _upstream(backend)
        woken: list[str] = []
        sleeping = asyncio.create_task(runtime.scale(plan, web, 0, backend.log, woken=lambda: woken.append("up")))
        await asyncio.sleep(0.2)  # its instance has left the upstream and is draining
        assert not upstream.addresses
        assert upstream.asleep  # requests arriving now are held, not answered 503 (failed before the fix)
        assert await sleeping == 0 and _web(backend) == []
        idle = runtime.idle_seconds(plan, web)
        assert idle is not None and idle >= 0
        await asyncio.sleep(0.5)
        assert upstream.wake is not None
        waking = asyncio.ensure_future(upstream.wake())  # what the ingress does for a held request
        await asyncio.sleep(0)
        after = runtime.idle_seconds(plan, web)
        assert after is not None and after < 0.2  # a request is waiting: not idle (failed before the fix)
        await waking
        assert woken == ["up"] and len(_web(backend)) == 1 and len(upstream.addresses) == 1
        assert not upstream.asleep and upstream.wake is None
        assert all(upstream.order())
    finally:
        await runtime.close()


def test_scaling_a_unit_that_is_not_running_changes_nothing(tmp_path: Path) -> None:
    backend = _local(tmp_path)
    runtime = backend.runtime
    assert isinstance(runtime, InstanceScaler)
    plan = plan_of(spec(backend))

    async def scale() -> int:
        try:
            return await runtime.scale(plan, plan.unit("web"), 3, backend.log)
        finally:
            await runtime.close()  # its cgroups go too

    assert asyncio.run(scale()) == 0
    assert runtime.idle_seconds(plan, plan.unit("web")) is None
