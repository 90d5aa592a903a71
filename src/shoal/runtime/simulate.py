"""The ``simulate`` runtime: walks every real step with realistic log lines, builds and runs nothing.

For teams testing their DigitalOcean automation where the sources cannot be built. A component
(or the app) with the env var ``SHOAL_SIMULATE_FAIL`` set to ``fetch``, ``build``, ``deploy``,
``health`` or ``job`` (comma-separated for several) fails at that step with DigitalOcean's reason code.
SCHEDULED jobs of the live deployment fire on their cron, in their time zone, as on the local
runtime: each run is a job invocation (SUCCEEDED, or FAILED with ``SHOAL_SIMULATE_FAIL=job``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from shoal.domain import jobs
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import Component, components, offline, running
from shoal.domain.ports import Console, DeployTarget, JobStore, LogSink
from shoal.runtime.local.schedule import Schedule, Scheduler

FAIL_VAR = "SHOAL_SIMULATE_FAIL"


def _fail_points(target: DeployTarget, component: Component) -> set[str]:
    envs: list[dict[str, Any]] = [*(target.spec.get("envs") or []), *(component.spec.get("envs") or [])]
    values = [str(e.get("value", "")) for e in envs if e.get("key") == FAIL_VAR]
    return {part.strip().lower() for value in values for part in value.split(",") if part.strip()}


def _source(component: Component) -> tuple[str, str]:
    spec = component.spec
    for key in ("git", "github", "gitlab", "bitbucket"):
        if isinstance(spec.get(key), dict):
            source = spec[key]
            return str(source.get("repo_clone_url") or source.get("repo") or ""), str(source.get("branch") or "main")
    if isinstance(spec.get("image"), dict):
        image = spec["image"]
        return f"{image.get('registry_type', '')}/{image.get('repository', '')}", str(image.get("tag") or "latest")
    return "", ""


class SimulatedConsole:
    """The simulate runtime runs no process, so there is no shell to open: the console says so in
    the terminal and ends normally, the way its other steps print what a real one would do."""

    def __init__(self, component: str, instance: str) -> None:
        self._lines = [f"shoal (simulate runtime): {component} runs no process here, so instance {instance} "
                       "has no shell to open; run shoal with --runtime local for a real console.\r\n".encode()]

    async def read(self) -> bytes:
        return self._lines.pop(0) if self._lines else b""

    def write(self, data: bytes) -> None:
        return None

    def resize(self, columns: int, rows: int) -> None:
        return None

    async def close(self) -> None:
        self._lines.clear()


class SimulateRuntime:
    name = "simulate"

    def __init__(self, step_seconds: float = 0.0, job_store: JobStore | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._delay = step_seconds
        self._jobs = job_store
        self._now = now
        self._scheduler = Scheduler(self._run_scheduled, now)
        self._scheduled: dict[str, tuple[DeployTarget, LogSink]] = {}  # deployment → what its runs need
        self._scheduler_task: asyncio.Task[None] | None = None

    async def _pause(self) -> None:
        await asyncio.sleep(self._delay)

    def _maybe_fail(self, point: str, target: DeployTarget, component: Component, code: str, message: str) -> None:
        if point in _fail_points(target, component):
            raise StepFailed(code, message)

    async def fetch(self, target: DeployTarget, component: Component, log: LogSink) -> str:
        repo, ref = _source(component)
        await self._pause()
        self._maybe_fail("fetch", target, component, "BuildJobFailed", f"could not fetch {repo or 'the source'}")
        commit = hashlib.sha1(f"{repo}@{ref}".encode()).hexdigest()
        if repo:
            log("BUILD", component.name, f"Fetching {repo} ({ref})")
            log("BUILD", component.name, f"Checked out commit {commit[:7]}")
        return commit

    async def build(self, target: DeployTarget, component: Component, commit: str, log: LogSink) -> bool:
        name = component.name
        log("BUILD", name, "=> Initializing build")
        log("BUILD", name, "=> Retrieving source code to /workspace")
        await self._pause()
        slug = component.spec.get("environment_slug") or "auto-detected"
        log("BUILD", name, f"=> Detected buildpack: {slug}")
        if component.spec.get("build_command"):
            log("BUILD", name, f"Running custom build command: {component.spec['build_command']}")
        self._maybe_fail("build", target, component, "BuildJobExitNonZero",
                         f"the build of {name} exited with status 1 ({FAIL_VAR}=build)")
        log("BUILD", name, "=> Build complete")
        return False

    async def provision_database(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        await self._pause()
        log("DEPLOY", component.name, f"Provisioned {component.spec.get('engine', 'PG')} database {component.name}")

    async def run_job(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        log("DEPLOY", component.name, f"Running job {component.name}: {component.spec.get('run_command', '')}".rstrip(": "))
        await self._pause()
        self._maybe_fail("job", target, component, "ContainerExitNonZero",
                         f"job {component.name} exited with status 1 ({FAIL_VAR}=job)")
        log("DEPLOY", component.name, f"Job {component.name} succeeded")

    async def start(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        if component.kind == "job" and component.job_kind == "SCHEDULED":
            self._schedule(target, component, log)
            return
        count = component.spec.get("instance_count") or 1
        log("DEPLOY", component.name, f"Starting {count} instance(s) of {component.name}")
        await self._pause()
        self._maybe_fail("deploy", target, component, "ContainerExitNonZero",
                         f"{component.name} exited with status 1 on start ({FAIL_VAR}=deploy)")

    async def wait_healthy(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        await self._pause()
        self._maybe_fail("health", target, component, "ContainerHealthChecksFailed",
                         f"{component.name} failed its health checks ({FAIL_VAR}=health)")
        log("DEPLOY", component.name, f"{component.name} is healthy")
        log("RUN", component.name, f"{component.name} started (simulated)")

    async def stop(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        await self._pause()
        log("DEPLOY", component.name, f"Stopped {component.name} (simulated)")

    async def switch_traffic(self, target: DeployTarget, log: LogSink) -> None:
        await self._pause()
        if offline(target.spec):
            url = (target.spec.get("maintenance") or {}).get("offline_page_url")
            log("DEPLOY", "deploy", f"Serving the offline page{f' from {url}' if url else ''} (simulated)")

    # -- scheduled jobs --------------------------------------------------------------------------

    def _schedule(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        if self._jobs is None:
            return
        schedule = component.spec.get("schedule") or {}
        cron, zone = str(schedule.get("cron")), str(schedule.get("time_zone") or "UTC")
        if self._scheduler_task is None:
            self._scheduler_task = asyncio.get_running_loop().create_task(self._scheduler.run())
        self._scheduled[target.deployment_id] = (target, log)
        self._scheduler.register(Schedule(target.app_id, target.deployment_id, component.name, cron, zone))
        log("DEPLOY", component.name, f"scheduled {component.name}: {cron} ({zone}) (simulated)")

    async def _run_scheduled(self, schedule: Schedule) -> None:
        found = self._scheduled.get(schedule.deployment_id)
        if found is None or self._jobs is None:
            return
        target, log = found
        part = next(c for c in components(target.spec) if c.name == schedule.job)
        started = self._now()
        invocation = jobs.JobInvocation(
            id=jobs.new_invocation_id(), app_id=target.app_id, deployment_id=target.deployment_id,
            job_name=part.name, phase=jobs.RUNNING, created_at=started, started_at=started,
            trigger={"type": "SCHEDULED", "scheduled": {"schedule": {"cron": schedule.cron,
                                                                     "time_zone": schedule.time_zone}}})
        await asyncio.to_thread(self._jobs.save_invocation, invocation)
        phase = jobs.FAILED
        try:
            await self.run_job(target, part, lambda stage, name, line: log("RUN", name, line))
            phase = jobs.SUCCEEDED
        except StepFailed as failure:
            log("RUN", part.name, failure.message)
        finally:
            done = replace(invocation, phase=phase, completed_at=self._now())
            await asyncio.shield(asyncio.to_thread(self._jobs.save_invocation, done))

    def _unschedule(self, deployment_id: str) -> None:
        self._scheduler.unregister(deployment_id)
        self._scheduled.pop(deployment_id, None)

    async def retire(self, app_id: str, deployment_id: str) -> None:
        self._unschedule(deployment_id)

    async def discard(self, app_id: str, deployment_id: str) -> None:
        self._unschedule(deployment_id)

    async def remove_app(self, app_id: str) -> None:
        for deployment_id, (target, _) in list(self._scheduled.items()):
            if target.app_id == app_id:
                self._unschedule(deployment_id)

    async def restore(self, target: DeployTarget, log: LogSink) -> None:
        """shoal restarted: the live deployment's scheduled jobs fire again."""
        for part in running(target.spec):
            if part.kind == "job" and part.job_kind == "SCHEDULED":
                self._schedule(target, part, log)

    async def open_console(self, app_id: str, deployment_id: str, component: str, instance: str) -> Console:
        return SimulatedConsole(component, instance)

    async def close(self) -> None:
        if self._scheduler_task is not None:
            self._scheduler_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler_task
        await self._scheduler.aclose()
