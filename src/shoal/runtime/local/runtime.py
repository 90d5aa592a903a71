"""The ``local`` runtime: the same spec DigitalOcean runs, built and run as processes on this machine.

Sources are fetched into a cache and exported per build; builds are reused when nothing changed;
services and workers run as supervised processes (restarted with back-off); static sites are
served by the ingress from their output dir; jobs run once (PRE/POST/FAILED_DEPLOY) or on their
schedule. A deployment's instances go live only after their readiness checks pass; the previous
deployment's instances are then drained and stopped in the background. An archived app's
deployment starts nothing (``plan.running``): it publishes the offline page, then ``stop`` drains
and stops what the earlier deployment ran, one component at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from shoal.core.errors import NotFound
from shoal.core.secrets import SecretBox
from shoal.domain import jobs
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import Component, components, offline, running
from shoal.domain.ports import Console, DeployTarget, JobStore, LogSink, RoutePublisher
from shoal.domain.routing import Backend, StaticSite, Upstream, routes_for, secure_headers
from shoal.runtime.local.bindings import Bindings, Clusters
from shoal.runtime.local.build import Builder, BuildResult
from shoal.runtime.local.console import Consoles
from shoal.runtime.local.databases import DevDatabases
from shoal.runtime.local.environment import build_env, run_env
from shoal.runtime.local.health import Probe
from shoal.runtime.local.offline import custom_page, page_for
from shoal.runtime.local.schedule import Schedule, Scheduler
from shoal.runtime.local.sources import SourceCache, source_ref
from shoal.runtime.local.supervisor import ProcessSpec, Supervisor

log = logging.getLogger("shoal.runtime")
# DigitalOcean drains for up to 15 s by default; locally nothing is in flight for long, so the
# drain ends as soon as the configured time passes or shoal stops.
DEFAULT_DRAIN_SECONDS = 15.0
DEFAULT_GRACE_SECONDS = 120.0
JOB_TIMEOUT_SECONDS = 1800.0


@dataclass
class _Deployed:
    """What one deployment of one component is running."""

    component: Component
    build: BuildResult
    instances: list[tuple[str, int | None]] = field(default_factory=list)  # (instance name, port)


@dataclass
class _AppState:
    live: str | None = None  # deployment whose backends the ingress serves
    switched_at: float = 0.0  # loop time of the last switch: drains count from it
    deployments: dict[str, dict[str, _Deployed]] = field(default_factory=dict)


class LocalRuntime:
    name = "local"

    def __init__(self, data_dir: Path, routes: RoutePublisher, job_store: JobStore,
                 host_env: dict[str, str], box: SecretBox | None = None,
                 databases: DevDatabases | None = None, clusters: Clusters = lambda name: None) -> None:
        self._bindings = Bindings(box, databases or DevDatabases(data_dir / "postgres"), clusters)
        self._sources = SourceCache(data_dir / "cache" / "git")
        self._builder = Builder(data_dir / "builds", in_use=self._app_dirs_in_use)
        self._checkouts = data_dir / "checkouts"
        self._routes = routes
        self._jobs = job_store
        self._host_env = host_env
        self._apps: dict[str, _AppState] = {}
        self._builds: dict[tuple[str, str], BuildResult] = {}
        self._sinks: dict[str, tuple[LogSink, str, str]] = {}  # instance → (sink, component, stage)
        self._supervisor = Supervisor(on_output=self._output, on_exit=self._crashed, on_ready=self._readiness)
        # instance → the published upstream it serves in, and its address there
        self._serving: dict[str, tuple[Upstream, tuple[str, int]]] = {}
        self._scheduler = Scheduler(self._run_scheduled)
        self._targets: dict[str, tuple[DeployTarget, LogSink]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._scheduler_task: asyncio.Task[None] | None = None
        self._consoles = Consoles()

    def _app_dirs_in_use(self) -> list[Path]:
        """Builds that running instances use: pruning old builds must never remove these."""
        return [entry.build.app_dir for state in self._apps.values() for dep in state.deployments.values()
                for entry in dep.values()]

    # -- logs from processes ---------------------------------------------------------------------

    def _output(self, instance: str, line: str) -> None:
        found = self._sinks.get(instance)
        if found:
            sink, component, stage = found
            sink(stage, component, line)

    def _crashed(self, instance: str, code: int, last_lines: list[str]) -> None:
        found = self._sinks.get(instance)
        if found:
            sink, component, _ = found
            for line in last_lines:
                sink("RUN_RESTARTED", component, line)
            sink("RUN_RESTARTED", component, f"instance {instance} exited with status {code}; restarting")

    def _readiness(self, instance: str, ready: bool) -> None:
        found = self._serving.get(instance)
        if found:
            upstream, address = found
            upstream.mark(address, ready)

    # -- build -----------------------------------------------------------------------------------

    async def fetch(self, target: DeployTarget, component: Component, log: LogSink) -> str:
        _refuse_unsupported(component)
        ref = source_ref(component.spec)
        if ref is None:
            raise StepFailed("BuildJobFailed", f"{component.name} uses an image source, which needs a container engine; "
                                               "none is available on this machine (the Kubernetes backend runs images)")
        return await self._sources.fetch(ref, lambda line: log("BUILD", component.name, line))

    async def build(self, target: DeployTarget, component: Component, commit: str, log: LogSink) -> bool:
        ref = source_ref(component.spec)
        if ref is None:
            raise StepFailed("BuildJobFailed", f"{component.name} has no source shoal can build")
        checkout = self._checkouts / target.deployment_id / component.name
        await asyncio.to_thread(shutil.rmtree, checkout, True)
        try:
            await self._sources.export(ref, commit, checkout)
            result = await self._builder.build(
                app_id=target.app_id, component=component.name, kind=component.kind, spec=component.spec,
                commit=commit, checkout=checkout,
                build_env=build_env(target.spec, component.spec, self._bindings.value_of(target, component.name, True)),
                force=target.force_build, log=lambda line: log("BUILD", component.name, line))
        finally:
            await asyncio.to_thread(shutil.rmtree, checkout, True)
        self._builds[(target.deployment_id, component.name)] = result
        return result.reused

    async def _built(self, target: DeployTarget, component: Component, log: LogSink) -> BuildResult:
        found = self._builds.get((target.deployment_id, component.name))
        if found is None:  # after a restart of shoal: the build is on disk, find it again
            commit = (target.commits or {}).get(component.name) or await self.fetch(target, component, log)
            await self.build(replace(target, force_build=False), component, commit, log)
            found = self._builds[(target.deployment_id, component.name)]
        return found

    # -- run -------------------------------------------------------------------------------------

    def _state(self, app_id: str) -> _AppState:
        return self._apps.setdefault(app_id, _AppState())

    def _env(self, target: DeployTarget, component: Component, build: BuildResult, port: int | None) -> dict[str, str]:
        return {**self._host_env, **build.env,
                **run_env(target.spec, component.spec, port, self._bindings.value_of(target, component.name, False))}

    async def provision_database(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        await self._bindings.provision(target, component, log)

    async def start(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        deployed = self._state(target.app_id).deployments.setdefault(target.deployment_id, {})
        if component.name in deployed:
            return  # idempotent: a repeated step after a crash finds it running
        build = await self._built(target, component, log)
        await self._bindings.ensure(target, log)
        entry = _Deployed(component, build)
        if component.kind == "job" and component.job_kind == "SCHEDULED":
            self._ensure_scheduler()
            schedule = component.spec.get("schedule") or {}
            self._targets[target.deployment_id] = (target, log)
            self._scheduler.register(Schedule(target.app_id, target.deployment_id, component.name,
                                              str(schedule.get("cron")), str(schedule.get("time_zone") or "UTC")))
            log("DEPLOY", component.name, f"scheduled {component.name}: {schedule.get('cron')} "
                                          f"({schedule.get('time_zone') or 'UTC'})")
        elif component.kind in ("service", "worker"):
            await self._start_instances(target, entry, log)
        deployed[component.name] = entry

    async def _start_instances(self, target: DeployTarget, entry: _Deployed, log: LogSink) -> None:
        component, build = entry.component, entry.build
        if not build.run_command:
            raise StepFailed("ContainerCommandNotExecutable",
                             f"{component.name} has no run command: set run_command in the spec or add a "
                             f"Procfile '{'web' if component.kind == 'service' else 'worker'}:' line")
        count = int(component.spec.get("instance_count") or
                    (component.spec.get("autoscaling") or {}).get("min_instance_count") or 1)
        termination = component.spec.get("termination") or {}
        ports = self._bindings.instance_ports(target).get(component.name, [])
        for i in range(count):
            port = ports[i] if i < len(ports) else None
            name = f"{target.app_name}-{component.name}-{target.deployment_id[:8]}-{i}"
            self._sinks[name] = (log, component.name, "RUN")
            spec = ProcessSpec(
                name=name, command=build.run_command, cwd=build.app_dir,
                env=self._env(target, component, build, port),
                readiness=Probe.from_spec(component.spec.get("health_check"), port) if port else None,
                liveness=Probe.from_spec(component.spec["liveness_health_check"], port or 0, liveness=True)
                if component.spec.get("liveness_health_check") and port else None,
                grace_period_seconds=float(termination.get("grace_period_seconds") or DEFAULT_GRACE_SECONDS))
            entry.instances.append((name, port))
            log("DEPLOY", component.name, f"starting instance {i} of {component.name}: {build.run_command}"
                                          + (f" (PORT={port})" if port else ""))
            await self._supervisor.start(spec)

    async def wait_healthy(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        entry = self._state(target.app_id).deployments.get(target.deployment_id, {}).get(component.name)
        if entry is None:
            return
        probe = Probe.from_spec(component.spec.get("health_check"), 1)
        timeout = probe.initial_delay_seconds + probe.period_seconds * (probe.failure_threshold + 1) + 30
        for name, port in entry.instances:
            if not await self._supervisor.wait_ready(name, timeout):
                raise StepFailed("ContainerHealthChecksFailed",
                                 f"{component.name} did not become healthy"
                                 + (f" on port {port}" if port else "") + "; see its RUN logs")
            log("DEPLOY", component.name, f"instance {name} is healthy")

    async def switch_traffic(self, target: DeployTarget, log: LogSink) -> None:
        state = self._state(target.app_id)
        deployed = state.deployments.get(target.deployment_id, {})
        backends: dict[str, Backend] = {}
        ready = {inst.name: inst.ready for inst in self._supervisor.instances()}
        for name, entry in deployed.items():
            if entry.component.kind == "service":
                upstream = Upstream([("127.0.0.1", port) for _, port in entry.instances if port],
                                    http2=entry.component.spec.get("protocol") == "HTTP2")
                for instance, port in entry.instances:
                    if port:
                        self._serving[instance] = (upstream, ("127.0.0.1", port))
                        upstream.mark(("127.0.0.1", port), ready.get(instance, False))
                backends[name] = upstream
            elif entry.component.kind == "static_site" and entry.build.static_root:
                spec = entry.component.spec
                backends[name] = StaticSite(entry.build.static_root, str(spec.get("index_document") or "index.html"),
                                            spec.get("error_document"), spec.get("catchall_document"))
        page = None
        if offline(target.spec):
            page = await page_for(target.app_name, (target.spec.get("maintenance") or {}).get("offline_page_url"), log)
        error_url = (target.spec.get("ingress") or {}).get("custom_error_page_url")
        error_page = await custom_page(error_url, "error page", log) if error_url else None
        # Every custom domain is served over HTTPS (TLS 1.2 at least, as on DigitalOcean's edge).
        min_tls = {("*." if wildcard else "") + str(d["domain"]): str(d.get("minimum_tls_version") or "1.2")
                   for d in target.spec.get("domains") or [] if d.get("domain")
                   for wildcard in ((False, True) if d.get("wildcard") else (False,))}
        # ingress.secure_header (issue 13 item 4): set/removed by the ingress on every answer of the app.
        self._routes.publish(target.app_id, list(target.hosts), routes_for(target.spec), backends, page, min_tls,
                             error_page, secure_headers(target.spec))
        state.live = target.deployment_id
        state.switched_at = asyncio.get_running_loop().time()

    async def stop(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        state = self._state(target.app_id)
        found: list[_Deployed] = []
        for deployment_id, deployed in state.deployments.items():
            if deployment_id != target.deployment_id and component.name in deployed:
                found.append(deployed.pop(component.name))
                self._scheduler.unregister(deployment_id, component.name)
        names = [name for entry in found for name, _ in entry.instances]
        if component.kind == "service" and names:
            # Requests that reached it before the switch may finish; the drain counts from the switch.
            drain = max(float((e.component.spec.get("termination") or {}).get("drain_seconds")
                              or DEFAULT_DRAIN_SECONDS) for e in found)
            await asyncio.sleep(max(0.0, state.switched_at + drain - asyncio.get_running_loop().time()))
        await asyncio.gather(*(self._supervisor.stop(name) for name in names))
        for name in names:
            self._sinks.pop(name, None)
            self._serving.pop(name, None)
            log("DEPLOY", component.name, f"stopped instance {name}")
        if found and component.kind == "job":
            log("DEPLOY", component.name, f"unscheduled {component.name}")

    # -- jobs ------------------------------------------------------------------------------------

    async def run_job(self, target: DeployTarget, component: Component, log: LogSink, stage: str = "DEPLOY") -> None:
        build = await self._built(target, component, log)
        await self._bindings.ensure(target, log)
        if not build.run_command:
            raise StepFailed("ContainerCommandNotExecutable", f"job {component.name} has no run_command")
        name = f"{target.app_name}-{component.name}-{target.deployment_id[:8]}-job"
        self._sinks[name] = (log, component.name, stage)
        spec = ProcessSpec(name=name, command=build.run_command, cwd=build.app_dir,
                           env=self._env(target, component, build, None), restart=False,
                           grace_period_seconds=float((component.spec.get("termination") or {}).get(
                               "grace_period_seconds") or 10))
        try:
            code = await self._supervisor.run_once(spec, timeout=JOB_TIMEOUT_SECONDS)
        finally:
            self._sinks.pop(name, None)
        if code != 0:
            raise StepFailed("ContainerExitNonZero", f"job {component.name} exited with status {code}")

    async def _run_scheduled(self, schedule: Schedule) -> None:
        found = self._targets.get(schedule.deployment_id)
        if found is None:
            return
        target, sink = found
        part = next(c for c in components(target.spec) if c.name == schedule.job)
        started = datetime.now(UTC)
        invocation = jobs.JobInvocation(
            id=jobs.new_invocation_id(), app_id=target.app_id, deployment_id=target.deployment_id,
            job_name=part.name, phase=jobs.RUNNING, created_at=started, started_at=started,
            trigger={"type": "SCHEDULED", "scheduled": {"schedule": {"cron": schedule.cron,
                                                                     "time_zone": schedule.time_zone}}})
        await asyncio.to_thread(self._jobs.save_invocation, invocation)
        phase = jobs.FAILED
        try:
            await self.run_job(target, part, sink, stage="RUN")
            phase = jobs.SUCCEEDED
        except StepFailed as failure:
            sink("RUN", part.name, failure.message)
        finally:
            done = replace(invocation, phase=phase, completed_at=datetime.now(UTC))
            await asyncio.shield(asyncio.to_thread(self._jobs.save_invocation, done))

    # -- retire, discard, remove -----------------------------------------------------------------

    async def _stop_deployment(self, app_id: str, deployment_id: str, drain: bool) -> None:
        state = self._state(app_id)
        deployed = state.deployments.pop(deployment_id, {})
        self._scheduler.unregister(deployment_id)
        self._bindings.forget_deployment(deployment_id)
        self._targets.pop(deployment_id, None)
        if drain and deployed:
            drains = [float((e.component.spec.get("termination") or {}).get("drain_seconds") or DEFAULT_DRAIN_SECONDS)
                      for e in deployed.values() if e.component.kind == "service"]
            await asyncio.sleep(min(drains, default=0))
        stops = [self._supervisor.stop(name) for entry in deployed.values() for name, _ in entry.instances]
        await asyncio.gather(*stops, return_exceptions=True)
        for entry in deployed.values():
            for name, _ in entry.instances:
                self._sinks.pop(name, None)
                self._serving.pop(name, None)

    async def retire(self, app_id: str, deployment_id: str) -> None:
        if self._state(app_id).live == deployment_id:
            return
        task = asyncio.get_running_loop().create_task(self._stop_deployment(app_id, deployment_id, drain=True))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def discard(self, app_id: str, deployment_id: str) -> None:
        if self._state(app_id).live != deployment_id:
            await self._stop_deployment(app_id, deployment_id, drain=False)

    async def remove_app(self, app_id: str) -> None:
        self._routes.withdraw(app_id)
        state = self._apps.get(app_id)
        if state:
            await asyncio.gather(*(self._stop_deployment(app_id, d, drain=False) for d in list(state.deployments)))
        self._apps.pop(app_id, None)
        await self._bindings.drop_app(app_id)

    async def restore(self, target: DeployTarget, log: LogSink) -> None:
        self._ensure_scheduler()
        parts = running(target.spec)
        for part in parts:
            if part.kind in ("service", "worker", "static_site") or (part.kind == "job" and part.job_kind == "SCHEDULED"):
                await self.start(target, part, log)
        for part in parts:
            if part.kind in ("service", "worker"):
                await self.wait_healthy(target, part, log)
        await self.switch_traffic(target, log)
        log("RUN", "deploy", "restarted after shoal restarted")

    async def open_console(self, app_id: str, deployment_id: str, component: str, instance: str) -> Console:
        """``doctl apps console`` (issue 13 item 1): a shell in the instance's working tree and
        environment, as its user when its ProcessSpec carries one (``console.py``)."""
        state = self._apps.get(app_id)
        entry = state.deployments.get(deployment_id, {}).get(component) if state else None
        live = {i.name: i for i in self._supervisor.instances() if i.pid is not None}
        if entry is None or instance not in live or instance not in {name for name, _ in entry.instances}:
            raise NotFound(f"instance {instance!r} of {component} is not running")
        spec = live[instance].spec
        return await self._consoles.open(spec.cwd, spec.env, getattr(spec, "uid", None), getattr(spec, "gid", None))

    def _ensure_scheduler(self) -> None:
        if self._scheduler_task is None:
            self._scheduler_task = asyncio.get_running_loop().create_task(self._scheduler.run())

    async def close(self) -> None:
        for task in [*self._background, *([self._scheduler_task] if self._scheduler_task else [])]:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._scheduler.aclose()
        await self._consoles.close_all()
        await self._supervisor.stop_all(grace=10)
        await self._bindings.close()


def _refuse_unsupported(component: Component) -> None:
    if component.kind == "function":
        raise StepFailed("BuildJobFailed", f"{component.name} is a functions component; running functions needs an "
                                           "OpenWhisk-style runtime, which shoal's local runtime does not have")

