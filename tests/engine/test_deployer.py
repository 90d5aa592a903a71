"""The deployer driven directly: the simulate runtime, a fake clock and a temp SQLite store, no server.

Each test makes the platform in-process (``build_platform``), runs the deployer's loop in a fresh
event loop, and uses the engine's use cases the API would call; what it asserts is what the API
would show (phases, progress, reasons, job invocations, log lines).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shoal.bootstrap import Platform, build_platform
from shoal.core.clock import FakeClock
from shoal.core.settings import RuntimeSettings, Settings
from shoal.domain.accounts import Account
from shoal.domain.apps import AppView
from shoal.domain.deployments import Deployment, Phase
from shoal.domain.progress import leaves
from tests.runtime.aio import run_async

GIT = {"git": {"repo_clone_url": "https://example.com/shop.git", "branch": "main"}}


def shop(**web: Any) -> dict[str, Any]:
    return {"name": "shop",
            "services": [{"name": "web", **GIT, "run_command": "serve", **web}],
            "jobs": [{"name": "migrate", **GIT, "kind": "PRE_DEPLOY", "run_command": "migrate"},
                     {"name": "cleanup", **GIT, "kind": "FAILED_DEPLOY", "run_command": "cleanup"},
                     {"name": "nightly", **GIT, "kind": "SCHEDULED", "run_command": "report",
                      "schedule": {"cron": "0 3 * * *", "time_zone": "Europe/Amsterdam"}}]}


@asynccontextmanager
async def engine(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[Platform, Account]]:
    platform = build_platform(Settings(data_dir=tmp_path / "data", runtime=RuntimeSettings(backend="simulate")), clock)
    account = platform.database.accounts.ensure_account("admin", "admin@example.com")
    loop = asyncio.get_running_loop().create_task(platform.deployer.run())
    await platform.deployer.ready.wait()
    try:
        yield platform, account
    finally:
        platform.deployer.stop()
        await loop
        platform.close()


async def settled(platform: Platform, dep_id: str, phases: set[Phase] | None = None) -> Deployment:
    wanted = phases or {Phase.ACTIVE, Phase.ERROR, Phase.CANCELED, Phase.SUPERSEDED}
    for _ in range(400):
        dep = await asyncio.to_thread(platform.database.deployments.deployment_by_id, dep_id)
        if dep is not None and dep.phase in wanted:
            return dep
        await asyncio.sleep(0.025)
    raise AssertionError(f"deployment {dep_id} did not settle")


async def until(check: Callable[[], Any]) -> Any:
    for _ in range(400):
        found = check()
        if found:
            return found
        await asyncio.sleep(0.025)
    raise AssertionError("condition not met")


def created(view: AppView) -> str:
    assert view.pending is not None, "the write started no deployment"
    return view.pending.id


def invocations(platform: Platform, app_id: str) -> list[Any]:
    return platform.database.jobs.list_invocations(app_id, 0, 50)[0]


@run_async
async def test_a_deployment_walks_every_step_to_active(tmp_path: Path) -> None:
    async with engine(tmp_path, FakeClock()) as (platform, account):
        view = platform.apps.create_app(account, shop())
        app_id = view.app.id
        dep = await settled(platform, created(view))
        assert dep.phase == Phase.ACTIVE
        assert {leaf["status"] for leaf in leaves(dep.progress)} == {"SUCCESS"}
        assert all(len(c["source_commit_hash"]) == 40 and c["artifact"]["kind"] for c in dep.components)
        ran = invocations(platform, app_id)
        assert [(i.job_name, i.phase) for i in ran] == [("migrate", "SUCCEEDED")]  # FAILED_DEPLOY did not run
        # What /instances and /health report: the runtime's instances of the live deployment, ready.
        assert [(i.component, i.ready) for i in platform.runtime.instances(app_id) if i.deployment_id == dep.id] == \
            [("web", True)]


@run_async
async def test_a_failing_health_check_ends_in_error_runs_failed_deploy_jobs_and_keeps_the_old_version(
        tmp_path: Path) -> None:
    async with engine(tmp_path, FakeClock()) as (platform, account):
        view = platform.apps.create_app(account, shop())
        app_id = view.app.id
        first = await settled(platform, created(view))
        sick = shop(envs=[{"key": "SHOAL_SIMULATE_FAIL", "value": "health"}])
        second = await settled(platform, created(platform.apps.update_app(account, app_id, sick)))
        assert second.phase == Phase.ERROR
        assert second.ended_reason and second.ended_reason["code"] == "ContainerHealthChecksFailed"
        failed = [leaf for leaf in leaves(second.progress) if leaf["status"] == "ERROR"]
        assert [leaf["name"] for leaf in failed] == ["wait"]
        assert ("cleanup", "SUCCEEDED") in [(i.job_name, i.phase) for i in invocations(platform, app_id)]
        assert platform.apps.get_app(account, app_id).active_deployment_id == first.id
        live = {i.deployment_id for i in platform.runtime.instances(app_id)}
        assert live == {first.id}  # the failed deployment's instances were discarded


@run_async
async def test_an_interrupted_deployment_resumes_from_its_step(tmp_path: Path) -> None:
    clock = FakeClock()
    # The app was created and its deployment got as far as waiting for web when shoal died.
    before = build_platform(Settings(data_dir=tmp_path / "data", runtime=RuntimeSettings(backend="simulate")), clock)
    account = before.database.accounts.ensure_account("admin", "admin@example.com")
    dep_id = created(before.apps.create_app(account, shop()))
    dep = before.database.deployments.deployment_by_id(dep_id)
    assert dep is not None and dep.phase == Phase.PENDING_BUILD
    interrupted = copy.deepcopy(dep.progress)
    reached = False
    for leaf in leaves(interrupted):
        reached = reached or leaf["name"] == "wait"
        leaf["status"] = "RUNNING" if leaf["name"] == "wait" else ("PENDING" if reached else "SUCCESS")
    with before.database.engine.begin() as conn:
        conn.execute(sa.text("update deployments set phase = 'DEPLOYING', progress = :p where id = :i"),
                     {"p": json.dumps(interrupted), "i": dep_id})
    before.close()
    async with engine(tmp_path, clock) as (platform, account):
        resumed = await settled(platform, dep_id, {Phase.ACTIVE, Phase.ERROR})
        assert resumed.phase == Phase.ACTIVE
        assert {leaf["status"] for leaf in leaves(resumed.progress)} == {"SUCCESS"}
        # The steps it had not reached ran; the ones it had finished were not repeated.
        started = platform.database.deployments.read_logs(dep_id, {"DEPLOY"})
        assert any("web is healthy" in line.line for _, line in started)
        assert not any("Running job migrate" in line.line for _, line in started)


@run_async
async def test_scheduled_jobs_run_on_their_cron_on_every_runtime(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 1, 59, 0, tzinfo=UTC))  # 02:59 in Amsterdam
    async with engine(tmp_path, clock) as (platform, account):
        view = platform.apps.create_app(account, shop())
        app_id = view.app.id
        dep = await settled(platform, created(view))
        assert dep.phase == Phase.ACTIVE
        clock.advance(90)  # past 03:00 in Amsterdam
        platform.deployer.scheduler.wake()  # it sleeps in real time until a run is due: look at the clock again
        runs = await until(lambda: [i for i in invocations(platform, app_id) if i.trigger.get("type") == "SCHEDULED"
                                    and i.phase == "SUCCEEDED"])
        assert runs[0].job_name == "nightly" and runs[0].deployment_id == dep.id
        assert runs[0].trigger["scheduled"]["schedule"] == {"cron": "0 3 * * *", "time_zone": "Europe/Amsterdam"}
        await until(lambda: [line for _, line in platform.database.deployments.read_logs(dep.id, {"RUN"}, "nightly")
                             if "report" in line.line])


@run_async
async def test_a_restart_reuses_the_active_build(tmp_path: Path) -> None:
    async with engine(tmp_path, FakeClock()) as (platform, account):
        view = platform.apps.create_app(account, shop())
        app_id = view.app.id
        first = await settled(platform, created(view))
        restart = platform.deployments.restart(account, app_id, [])
        done = await settled(platform, restart.id)
        assert done.phase == Phase.ACTIVE
        web = next(c for c in done.components if c["name"] == "web")
        assert web["source_commit_hash"] == next(c for c in first.components if c["name"] == "web")["source_commit_hash"]
        lines = platform.database.deployments.read_logs(done.id, {"BUILD"})
        assert any("PreviousBuildReused" in line.line for _, line in lines)
