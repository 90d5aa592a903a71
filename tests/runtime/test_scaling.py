"""The local and container runtimes as InstanceScalers: real processes (or podman containers) added to
and removed from a published service, put to sleep and woken through the upstream's hook (what the
ingress calls), and each instance's CPU and memory in ``instances``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shoal.domain.ports import InstanceScaler
from shoal.domain.routing import Upstream
from shoal.ingress.table import RouteTable
from shoal.runtime.container import containers
from shoal.runtime.container.stack import STACK_IMAGE
from tests.e2e.apps import PY_SERVER, make_repo
from tests.runtime.aio import run_async
from tests.runtime.test_conformance import (BACKENDS, IN_CONTAINER, PODMAN, Backend, _podman_cleanup, deploy,
                                            plan_of, spec, until)

__all__ = ["_podman_cleanup"]  # the conformance module's: removes what the container backend left, at the end
SCALERS = ["local", "container"]


@pytest.fixture(params=SCALERS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield _backend(request.param, tmp_path)
    if request.param == "container":  # what a test left running (the images go at the module's end)
        containers.remove_labelled(PODMAN.session.engine, grace_seconds=1)


def _upstream(backend: Backend) -> Upstream:
    app = backend.routes.lookup("shop.example.test")
    assert app is not None
    found = app.backends["web"]
    assert isinstance(found, Upstream)
    return found


def _web(backend: Backend) -> list[str]:
    return sorted(s.name for s in backend.runtime.instances("app-1") if s.component == "web")


def _measured(backend: Backend) -> bool:
    """Every web instance has its memory and a CPU rate (over a second or more) in ``instances``."""
    states = [s for s in backend.runtime.instances("app-1") if s.component == "web"]
    return bool(states) and all(s.memory_bytes and s.memory_bytes > 0 and s.cpu_percent is not None
                                for s in states)


@run_async(timeout=240)  # a container backend builds its image in the stack first
async def test_instances_join_and_leave_the_published_service(backend: Backend) -> None:
    runtime = backend.runtime
    assert isinstance(runtime, InstanceScaler)
    try:
        plan = await deploy(backend, plan_of(spec(backend, instance_count=1)))
        web = plan.unit("web")
        upstream = _upstream(backend)
        assert len(upstream.addresses) == 1
        assert await runtime.scale(plan, web, 3, backend.log) == 3
        assert len(_web(backend)) == 3 and len(set(upstream.addresses)) == 3 and not upstream.down
        async with httpx.AsyncClient() as http:  # each added instance answers where the ingress sends
            for host, port in upstream.addresses:
                assert (await http.get(f"http://{host}:{port}/")).status_code == 200
        await until(lambda: _measured(backend), 30)
        assert await runtime.scale(plan, web, 1, backend.log) == 1
        assert _web(backend) == ["shop-web-0a1b2c3d-0"] and len(upstream.addresses) == 1
        assert any("stopped instance shop-web-0a1b2c3d-2" in line for _, _, line in backend.lines)
    finally:
        await runtime.close()


@run_async(timeout=240)  # a container backend builds its image in the stack first
async def test_a_sleeping_service_is_woken_by_its_upstream_and_is_not_idle_while_it_wakes(backend: Backend) -> None:
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


@run_async(timeout=240)  # a container backend builds its image in the stack first
async def test_a_worker_scales_up_and_down_without_an_upstream(backend: Backend) -> None:
    runtime = backend.runtime
    assert isinstance(runtime, InstanceScaler)
    try:
        plan = await deploy(backend, plan_of(spec(backend, instance_count=1)))
        queue = plan.unit("queue")

        def workers() -> list[str]:
            return sorted(s.name for s in runtime.instances("app-1") if s.component == "queue" and s.ready)

        assert await runtime.scale(plan, queue, 2, backend.log) == 2
        await until(lambda: workers() == ["shop-queue-0a1b2c3d-0", "shop-queue-0a1b2c3d-1"], 30)
        assert await runtime.scale(plan, queue, 1, backend.log) == 1
        assert workers() == ["shop-queue-0a1b2c3d-0"]
        assert runtime.idle_seconds(plan, queue) is None  # a worker gets no requests: never idle
    finally:
        await runtime.close()


def test_scaling_a_unit_that_is_not_running_changes_nothing(backend: Backend) -> None:
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


@run_async(timeout=240)
async def test_a_container_scaling_added_before_shoal_restarted_is_removed_when_the_deployment_starts_again(
        tmp_path: Path) -> None:
    """After a ``kill -9`` the deployment's own instance count is adopted; an instance container beyond
    it (added by the autoscaler, which starts again from the minimum) must not run on unsupervised."""
    backend = _backend("container", tmp_path)
    engine = PODMAN.session.engine
    plan = plan_of(spec(backend, instance_count=1))
    leftover = containers.run(engine, containers.RunSpec(
        name=f"shoal-{engine.owner[:8]}-leftover-web-1", image=STACK_IMAGE, command=["sleep", "600"],
        labels=engine.labels(app=plan.app_id, deployment=plan.deployment_id, component="web",
                             instance="shop-web-0a1b2c3d-1", kind="service")))
    try:
        await deploy(backend, plan)
        assert _web(backend) == ["shop-web-0a1b2c3d-0"]
        assert leftover.id not in {f.id for f in containers.listed(engine, app=plan.app_id)}
    finally:
        await backend.runtime.close()
        containers.remove_labelled(engine, grace_seconds=1)


def _backend(name: str, tmp_path: Path) -> Backend:
    routes = RouteTable()
    repo = make_repo(tmp_path / "repo", {"server.py": PY_SERVER, "worker.py": "import time\nwhile True: time.sleep(1)\n",
                                          "job.py": "import sys; sys.exit(0)\n"})
    python, env = IN_CONTAINER.get(name, (sys.executable, ()))
    return Backend(name, BACKENDS[name](tmp_path, routes), routes, repo, python, env)
