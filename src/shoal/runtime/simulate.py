"""The ``simulate`` runtime: walks every real step with realistic log lines, builds and runs nothing.

For teams testing their DigitalOcean automation where the sources cannot be built. A component
(or the app) with the env var ``SHOAL_SIMULATE_FAIL`` set to ``fetch``, ``build``, ``deploy``,
``health`` or ``job`` (comma-separated for several) fails at that step with DigitalOcean's reason code.

It keeps a record of the instances it pretends to run, so ``/instances`` and ``/health`` answer
as they would on a real backend: instances exist from ``start``, are ready once their deployment's
health wait passed, and go when their deployment is retired, discarded or the app removed.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

from shoal.core.errors import NotFound
from shoal.domain.bindables import database_variables
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import AppPlan, Artifact, GitSource, ImageSource, RunUnit
from shoal.domain.ports import Console, DatabaseConnection, InstanceState, LogSink

FAIL_VAR = "SHOAL_SIMULATE_FAIL"


def _fail_points(unit: RunUnit) -> set[str]:
    # The unit's env already layers the app's variables under its own.
    values = [v.value for v in (*unit.build_env, *unit.run_env) if v.key == FAIL_VAR]
    return {part.strip().lower() for value in values for part in value.split(",") if part.strip()}


def _source(unit: RunUnit) -> tuple[str, str]:
    match unit.source:
        case GitSource(url=url, branch=branch):
            return url, branch or "main"
        case ImageSource() as image:
            return f"{image.registry_type}/{image.repository}", image.tag or "latest"
    return "", ""


_PORTS = {"PG": 5432, "MYSQL": 3306, "REDIS": 6379, "VALKEY": 6379, "MONGODB": 27017}


def _simulated_connection(app_id: str, name: str, engine: str, resets: int) -> DatabaseConnection:
    password = hashlib.sha256(f"{app_id}:{name}:{resets}".encode()).hexdigest()[:24]
    host, port = "127.0.0.1", _PORTS.get(engine, 5432)
    url = database_variables(host, port, name, password, name, engine).get("DATABASE_URL", "")
    return DatabaseConnection(name, engine, host, port, name, password, name, url)


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

    def __init__(self, step_seconds: float = 0.0) -> None:
        self._delay = step_seconds
        # app → deployment → instance name → its state
        self._instances: dict[str, dict[str, dict[str, InstanceState]]] = {}
        self._live: dict[str, str] = {}  # app → the deployment traffic was last switched to
        self._databases: dict[tuple[str, str], tuple[str, int]] = {}  # (app, name) → (engine, password resets)

    async def _pause(self) -> None:
        await asyncio.sleep(self._delay)

    def _maybe_fail(self, point: str, unit: RunUnit, code: str, message: str) -> None:
        if point in _fail_points(unit):
            raise StepFailed(code, message)

    async def fetch(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> str:
        repo, ref = _source(unit)
        await self._pause()
        self._maybe_fail("fetch", unit, "BuildJobFailed", f"could not fetch {repo or 'the source'}")
        commit = unit.commit or hashlib.sha1(f"{repo}@{ref}".encode()).hexdigest()
        if repo:
            log("BUILD", unit.name, f"Fetching {repo} ({ref})")
            log("BUILD", unit.name, f"Checked out commit {commit[:7]}")
        return commit

    async def build(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> Artifact:
        name = unit.name
        log("BUILD", name, "=> Initializing build")
        log("BUILD", name, "=> Retrieving source code to /workspace")
        await self._pause()
        log("BUILD", name, f"=> Detected buildpack: {unit.build.environment_slug or 'auto-detected'}")
        if unit.build.build_command:
            log("BUILD", name, f"Running custom build command: {unit.build.build_command}")
        self._maybe_fail("build", unit, "BuildJobExitNonZero", f"the build of {name} exited with status 1 ({FAIL_VAR}=build)")
        log("BUILD", name, "=> Build complete")
        return Artifact("none", f"simulated:{unit.commit or ''}")

    async def provision_database(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        await self._pause()
        engine = unit.database.engine if unit.database else "PG"
        engine = engine or "PG"
        resets = self._databases.get((plan.app_id, unit.name), (engine, 0))[1]
        self._databases[(plan.app_id, unit.name)] = (engine, resets)
        log("DEPLOY", unit.name, f"Provisioned {engine} database {unit.name}")

    async def run_job(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        log("DEPLOY", unit.name, f"Running job {unit.name}: {unit.run_command or ''}".rstrip(": "))
        await self._pause()
        self._maybe_fail("job", unit, "ContainerExitNonZero", f"job {unit.name} exited with status 1 ({FAIL_VAR}=job)")
        log("DEPLOY", unit.name, f"Job {unit.name} succeeded")

    async def start(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        if unit.runs_continuously:
            log("DEPLOY", unit.name, f"Starting {unit.instance_count} instance(s) of {unit.name}")
        await self._pause()
        self._maybe_fail("deploy", unit, "ContainerExitNonZero",
                         f"{unit.name} exited with status 1 on start ({FAIL_VAR}=deploy)")
        self._run(plan, unit, ready=False)

    def _run(self, plan: AppPlan, unit: RunUnit, ready: bool) -> None:
        deployment = self._instances.setdefault(plan.app_id, {}).setdefault(plan.deployment_id, {})
        now = datetime.now(UTC)
        for name in unit.instance_names(plan.app_name, plan.deployment_id):
            current = deployment.get(name)
            deployment[name] = InstanceState(plan.deployment_id, unit.name, name, ready or bool(current and current.ready),
                                             started_at=current.started_at if current else now)

    async def wait_healthy(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        await self._pause()
        self._maybe_fail("health", unit, "ContainerHealthChecksFailed",
                         f"{unit.name} failed its health checks ({FAIL_VAR}=health)")
        self._run(plan, unit, ready=True)
        log("DEPLOY", unit.name, f"{unit.name} is healthy")
        log("RUN", unit.name, f"{unit.name} started (simulated)")

    async def stop(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        await self._pause()
        for deployment_id, running in self._instances.get(plan.app_id, {}).items():
            if deployment_id != plan.deployment_id:
                for name in [n for n, i in running.items() if i.component == unit.name]:
                    del running[name]
        log("DEPLOY", unit.name, f"Stopped {unit.name} (simulated)")

    async def switch_traffic(self, plan: AppPlan, log: LogSink) -> None:
        await self._pause()
        self._live[plan.app_id] = plan.deployment_id
        if plan.offline:
            url = plan.maintenance.offline_page_url
            log("DEPLOY", "deploy", f"Serving the offline page{f' from {url}' if url else ''} (simulated)")

    async def retire(self, app_id: str, deployment_id: str) -> None:
        if self._live.get(app_id) != deployment_id:
            self._instances.get(app_id, {}).pop(deployment_id, None)

    async def discard(self, app_id: str, deployment_id: str) -> None:
        await self.retire(app_id, deployment_id)

    async def remove_app(self, app_id: str) -> None:
        self._instances.pop(app_id, None)
        self._live.pop(app_id, None)
        self._databases = {key: db for key, db in self._databases.items() if key[0] != app_id}

    async def release(self, app_id: str) -> None:
        await self.remove_app(app_id)  # nothing simulated outlives the app's instances

    async def restore(self, plan: AppPlan, log: LogSink) -> None:
        """Nothing really ran, so nothing was lost: the active deployment's instances are back."""
        for unit in plan.running:
            self._run(plan, unit, ready=True)
        self._live[plan.app_id] = plan.deployment_id

    async def open_console(self, app_id: str, deployment_id: str, component: str, instance: str) -> Console:
        return SimulatedConsole(component, instance)

    def database_connections(self, app_id: str) -> list[DatabaseConnection]:
        """What a real runtime would answer, for databases that are not there: the addresses are the
        engines' usual local ports, the passwords change with each reset."""
        return [_simulated_connection(app_id, name, engine, resets)
                for (owner, name), (engine, resets) in sorted(self._databases.items()) if owner == app_id]

    async def reset_database_password(self, app_id: str, component: str) -> None:
        found = self._databases.get((app_id, component))
        if found is None:
            raise NotFound(f"database {component} of app {app_id} has not been created yet (no deployment "
                           "provisioned it)")
        self._databases[(app_id, component)] = (found[0], found[1] + 1)

    def instances(self, app_id: str) -> list[InstanceState]:
        return [i for running in self._instances.get(app_id, {}).values() for i in running.values()]

    async def close(self) -> None:
        self._instances.clear()
