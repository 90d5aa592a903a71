"""What every runtime must do, the same test run against each backend through the Runtime port.

A new backend joins by adding a factory to ``BACKENDS`` (skipping, with its reason, only where the
machine lacks what it needs). The steps are driven as the deployer drives them — fetch, build,
start, wait, switch traffic — from a plan made from a real spec, against a real git repository
for the backends that build; what is asserted is what a user sees through ``/instances`` and
``/health`` (the runtime's ``instances``) and the ingress's route table.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.core.secrets import SecretBox
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import AppPlan, Artifact, make_plan
from shoal.domain.ports import InstanceState, Runtime
from shoal.domain.routing import Upstream
from shoal.ingress.table import RouteTable
from shoal.runtime.local.databases import DevDatabases
from shoal.runtime.local.runtime import LocalRuntime
from shoal.runtime.local.usage import UsageMeter
from shoal.runtime.simulate import SimulateRuntime
from shoal.runtime.container import containers
from shoal.runtime.container.stack import STACK_IMAGE
from tests.containers import clean, engine_session, image_ids, stack
from tests.e2e.apps import PY_SERVER, make_repo
from tests.e2e.functions_apps import PY_HELLO
from tests.live import apps_dir

WORKER = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n" \
         "print('worker up', flush=True)\nwhile True: time.sleep(1)\n"


@dataclass
class Backend:
    name: str
    runtime: Runtime
    routes: RouteTable
    repo: Path
    python: str = sys.executable  # what the spec's run commands start
    env: tuple[dict[str, str], ...] = ()  # extra variables every component gets
    lines: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def publishes_routes(self) -> bool:
        return self.name != "simulate"  # it serves nothing, so the ingress has nothing to route to

    def log(self, stage: str, component: str, line: str) -> None:
        self.lines.append((stage, component, line))


Factory = Callable[[Path, RouteTable], Runtime]


def _simulate(tmp: Path, routes: RouteTable) -> Runtime:
    return SimulateRuntime()


_APPS: dict[Path, Path] = {}  # one apps dir per test: a runtime made again (shoal restarted) finds its builds


def _local(tmp: Path, routes: RouteTable) -> Runtime:
    apps = _APPS.setdefault(tmp, apps_dir())
    return LocalRuntime(tmp / "data", routes, {"PATH": "/usr/local/bin:/usr/bin:/bin"}, SecretBox(bytes(32)),
                        DevDatabases(tmp / "data" / "postgres"), apps_dir=apps)


class _Podman:
    """One private podman service for the container backend's tests (opened only if they run)."""

    session: Any = None

    def engine(self, tmp: Path) -> Any:
        if self.session is None:
            self.session = engine_session(tmp.parent / "podman-conformance")
            self.before = image_ids(self.session.engine)
        return self.session


PODMAN = _Podman()


def _container(tmp: Path, routes: RouteTable) -> Runtime:
    from shoal.runtime.container.access import EngineAccess
    from shoal.runtime.container.runtime import ContainerRuntime

    session = PODMAN.engine(tmp)
    stack(session.engine)
    access = EngineAccess(lambda: session, session)  # handed over: the runtime never closes it
    return ContainerRuntime(tmp / "data", routes, access, STACK_IMAGE, box=SecretBox(bytes(32)),
                            databases=DevDatabases(tmp / "data" / "postgres"))


BACKENDS: dict[str, Factory] = {"simulate": _simulate, "local": _local, "container": _container}
IN_CONTAINER = {"container": ("python3", ({"key": "BIND_HOST", "value": "0.0.0.0"},))}


@pytest.fixture(scope="module", autouse=True)
def _podman_cleanup() -> Iterator[None]:
    yield
    if PODMAN.session is not None:
        clean(PODMAN.session, PODMAN.before)
        PODMAN.session = None


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    routes = RouteTable()
    repo = make_repo(tmp_path / "repo", {"server.py": PY_SERVER, "worker.py": WORKER,
                                          "job.py": "import sys; print('job ran'); sys.exit(int(sys.argv[1]))\n"})
    python, env = IN_CONTAINER.get(request.param, (sys.executable, ()))
    yield Backend(request.param, BACKENDS[request.param](tmp_path, routes), routes, repo, python, env)
    if request.param == "container":  # what a test left running (the images go at the module's end)
        containers.remove_labelled(PODMAN.session.engine, grace_seconds=1)


def spec(backend: Backend, **service: Any) -> dict[str, Any]:
    git = {"git": {"repo_clone_url": str(backend.repo), "branch": "main"}}
    python = backend.python
    return {"name": "shop", "region": "nyc", "envs": list(backend.env),
            "services": [{"name": "web", **git, "run_command": f"{python} server.py", "http_port": 8080,
                          "health_check": {"http_path": "/", "period_seconds": 1}, "instance_count": 2,
                          "termination": {"drain_seconds": 1, "grace_period_seconds": 5}, **service}],
            "workers": [{"name": "queue", **git, "run_command": f"{python} worker.py"}],
            "jobs": [{"name": "migrate", **git, "kind": "PRE_DEPLOY", "run_command": f"{python} job.py 0"},
                     {"name": "broken", **git, "kind": "POST_DEPLOY", "run_command": f"{python} job.py 3",
                      "envs": [{"key": "SHOAL_SIMULATE_FAIL", "value": "job"}]}],
            "ingress": {"rules": [{"match": {"path": {"prefix": "/"}}, "component": {"name": "web"}}]}}


def plan_of(raw: dict[str, Any], deployment_id: str = "0a1b2c3d-0001") -> AppPlan:
    return make_plan(raw, app_id="app-1", deployment_id=deployment_id, account_id="acct",
                     default_host="shop.example.test")


async def deploy(backend: Backend, plan: AppPlan, *, run_jobs: bool = False) -> AppPlan:
    """The deployer's order of steps; the plan it returns carries the commits and artefacts."""
    rt = backend.runtime
    commits: dict[str, str] = {}
    artifacts: dict[str, Artifact] = {}
    for unit in plan.units:
        if unit.builds:
            commits[unit.name] = await rt.fetch(plan, unit, backend.log)
            artifacts[unit.name] = await rt.build(plan, replace(unit, commit=commits[unit.name]), backend.log)
    plan = plan.with_progress(commits, artifacts)
    if run_jobs:
        await rt.run_job(plan, plan.unit("migrate"), backend.log)
    for unit in plan.running:
        if unit.deploys:
            await rt.start(plan, unit, backend.log)
    for unit in plan.running:
        if unit.runs_continuously:
            await rt.wait_healthy(plan, unit, backend.log)
    await rt.switch_traffic(plan, backend.log)
    return plan


def ready(states: list[InstanceState], deployment_id: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for state in states:
        if state.deployment_id == deployment_id and state.ready:
            found.setdefault(state.component, []).append(state.name)
    return {k: sorted(v) for k, v in found.items()}


async def until(check: Callable[[], bool], seconds: float = 15) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def run(backend: Backend, scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        try:
            await asyncio.wait_for(scenario(), 120)
        finally:
            await backend.runtime.close()

    asyncio.run(main())


def test_instances_are_what_the_plan_asks_and_starting_again_changes_nothing(backend: Backend) -> None:
    async def scenario() -> None:
        plan = await deploy(backend, plan_of(spec(backend)))
        expected = {"web": plan.unit("web").instance_names("shop", plan.deployment_id),
                    "queue": plan.unit("queue").instance_names("shop", plan.deployment_id)}
        assert ready(backend.runtime.instances("app-1"), plan.deployment_id) == expected
        for unit in plan.running:  # a step repeated after a crash
            if unit.deploys:
                await backend.runtime.start(plan, unit, backend.log)
        assert ready(backend.runtime.instances("app-1"), plan.deployment_id) == expected
        if backend.publishes_routes:
            assert backend.routes.lookup("shop.example.test") is not None

    run(backend, scenario)


def test_an_autoscaled_component_runs_its_minimum(backend: Backend) -> None:
    async def scenario() -> None:
        raw = spec(backend, autoscaling={"min_instance_count": 3, "max_instance_count": 5,
                                              "metrics": {"cpu": {"percent": 70}}},
                   instance_size_slug="apps-d-1vcpu-0.5gb")
        del raw["services"][0]["instance_count"]
        plan = await deploy(backend, plan_of(raw))
        assert plan.unit("web").instance_count == 3
        assert len(ready(backend.runtime.instances("app-1"), plan.deployment_id)["web"]) == 3

    run(backend, scenario)


def test_jobs_run_to_completion_and_a_failing_one_says_so(backend: Backend) -> None:
    async def scenario() -> None:
        plan = await deploy(backend, plan_of(spec(backend)), run_jobs=True)
        with pytest.raises(StepFailed) as failed:
            await backend.runtime.run_job(plan, plan.unit("broken"), backend.log)
        assert failed.value.code == "ContainerExitNonZero"

    run(backend, scenario)


def test_a_new_deployment_replaces_the_old_and_removing_the_app_leaves_nothing(backend: Backend) -> None:
    async def scenario() -> None:
        first = await deploy(backend, plan_of(spec(backend)))
        second = await deploy(backend, plan_of(spec(backend), "1a1b2c3d-0002"))
        await backend.runtime.retire("app-1", first.deployment_id)
        await until(lambda: not any(i.deployment_id == first.deployment_id
                                    for i in backend.runtime.instances("app-1")))
        assert len(ready(backend.runtime.instances("app-1"), second.deployment_id)["web"]) == 2
        third = plan_of(spec(backend), "2a1b2c3d-0003")
        await deploy(backend, third)
        await backend.runtime.discard("app-1", third.deployment_id)  # live now: discard leaves it alone
        assert ready(backend.runtime.instances("app-1"), third.deployment_id)
        await backend.runtime.remove_app("app-1")
        assert backend.runtime.instances("app-1") == []
        assert backend.routes.lookup("shop.example.test") is None

    run(backend, scenario)


def test_restore_brings_the_active_deployment_back_from_its_artefacts(backend: Backend, tmp_path: Path) -> None:
    async def scenario() -> None:
        plan = await deploy(backend, plan_of(spec(backend)))
        await backend.runtime.close()  # shoal stopped
        backend.runtime = BACKENDS[backend.name](tmp_path, backend.routes)
        backend.lines.clear()
        await backend.runtime.restore(plan, backend.log)
        assert len(ready(backend.runtime.instances("app-1"), plan.deployment_id).get("web", [])) == 2
        assert not any("Building" in line for _, _, line in backend.lines)  # reused, not rebuilt

    run(backend, scenario)


def test_releasing_an_app_to_another_server_stops_it_here_and_a_restore_brings_it_back(backend: Backend) -> None:
    """Another server took the app over: nothing of it runs or is routed here, yet (its data kept)
    becoming its owner again is an ordinary restore."""
    async def scenario() -> None:
        plan = await deploy(backend, plan_of(spec(backend)))
        await backend.runtime.release("app-1")
        assert backend.runtime.instances("app-1") == []
        if backend.name in ("local", "container"):
            assert backend.routes.lookup("shop.example.test") is None
        await backend.runtime.restore(plan, backend.log)
        assert len(ready(backend.runtime.instances("app-1"), plan.deployment_id).get("web", [])) == 2

    run(backend, scenario)


def test_a_functions_component_is_served_under_its_route_and_goes_with_the_app(backend: Backend,
                                                                                 tmp_path: Path) -> None:
    if backend.name == "container":
        pytest.skip("functions components are not run by the container runtime yet (its fetch refuses them "
                    "with BuildJobFailed); the functions gateway runs in the local runtime only")
    repo = make_repo(tmp_path / "functions", {"packages/sample/hello.py": PY_HELLO})
    raw = {"name": "shop", "region": "nyc", "functions": [
        {"name": "fns", "git": {"repo_clone_url": str(repo), "branch": "main"}, "routes": [{"path": "/fn"}]}],
        "ingress": {"rules": [{"match": {"path": {"prefix": "/fn"}}, "component": {"name": "fns"}}]}}

    async def scenario() -> None:
        plan = await deploy(backend, plan_of(raw))
        assert backend.runtime.instances("app-1") == []  # no instances DigitalOcean would list
        if not backend.publishes_routes:
            return
        app = backend.routes.lookup("shop.example.test")
        assert app is not None
        upstream = app.backends["fns"]
        assert isinstance(upstream, Upstream) and len(upstream.addresses) == 1
        host, port = upstream.addresses[0]
        answer = await asyncio.to_thread(httpx.get, f"http://{host}:{port}/sample/hello?name=Ann", timeout=30)
        assert (answer.status_code, answer.text) == (200, "Hello Ann!")
        await backend.runtime.remove_app(plan.app_id)
        with pytest.raises(httpx.HTTPError):
            await asyncio.to_thread(httpx.get, f"http://{host}:{port}/sample/hello", timeout=5)

    run(backend, scenario)


HOG = ("import time\nblock = bytearray(768 * 2**20)\nfor i in range(0, len(block), 4096): block[i] = 1\n"
       "print('holding 768 MiB', flush=True)\ntime.sleep(60)\n")


def test_an_instance_that_outgrows_its_size_is_killed_and_says_so(backend: Backend) -> None:
    """apps-s-1vcpu-0.5gb gives an instance 512 MiB: one that holds 768 MiB is ended by the kernel,
    and its RUN_RESTARTED lines say why (the process runtime limited nothing before: it held them)."""
    if backend.name == "simulate":
        pytest.skip("the simulate runtime runs nothing")
    if backend.name == "local" and not UsageMeter(namespace="shoal-probe").cgroups:
        pytest.skip("the process runtime limits memory through cgroups v1, not writable here")
    (backend.repo / "hog.py").write_text(HOG)
    subprocess.run(["git", "-C", str(backend.repo), "add", "hog.py"], check=True)
    subprocess.run(["git", "-C", str(backend.repo), "commit", "-qm", "hog"], check=True)
    raw = spec(backend)
    raw["workers"] = [{"name": "hog", "git": {"repo_clone_url": str(backend.repo), "branch": "main"},
                       "run_command": f"{backend.python} hog.py", "instance_size_slug": "apps-s-1vcpu-0.5gb"}]

    async def scenario() -> None:
        try:
            await deploy(backend, plan_of(raw))
        except StepFailed as failed:  # it died before it counted as up: the deployment fails, saying why
            assert failed.code == "ContainerHealthChecksFailed"
            assert "more memory than its instance size allows" in failed.message, failed.message

        def killed() -> bool:
            return any(stage == "RUN_RESTARTED" and component == "hog"
                       and "more memory than its instance size allows" in line
                       for stage, component, line in backend.lines)

        await until(killed, seconds=60)
        assert not any("holding 768 MiB" in line for _, component, line in backend.lines if component == "hog")

    run(backend, scenario)
