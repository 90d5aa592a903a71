"""The ``local`` runtime: the same plan DigitalOcean runs, built and run as processes on this machine.

Sources are fetched into a cache and exported per build; builds are reused when nothing changed;
services and workers run as supervised processes (restarted with back-off); static sites are
served by the ingress from their output dir; a functions component runs one gateway process
(``shoal.runtime.functions``) that the ingress forwards its route to, like a service; jobs run
to completion when the engine asks (deploy time or their schedule). A deployment's instances go
live only after their readiness checks pass; the previous deployment's instances are then drained
and stopped in the background. An archived
app's deployment starts nothing (``AppPlan.running``): it publishes the offline page, then ``stop``
drains and stops what the earlier deployment ran, one component at a time.

State: one record per running deployment holding one per component (``records``); starting,
scaling and measuring instances is ``instances``' part; what the supervisor says about them (lines,
crashes, readiness) goes to their logs and upstreams through ``reports``. Each instance runs in
cgroups of its own (``usage``), which is what ``instances()`` reports CPU and memory from. When shoal
runs as root each app builds and runs as a user of its own (``identity``); every process group is
recorded on disk (``groups``), so a shoal killed with ``kill -9`` leaves nothing running twice: the
next one ends the leftovers before it starts anything. After such a restart the steps of an
unfinished deployment start again what its earlier steps had started (``wait_healthy``,
``switch_traffic``), so a deployment never goes live with nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from shoal.core.errors import NotFound
from shoal.core.secrets import SecretBox
from shoal.domain.component_metrics import Activations
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import DEFAULT_HTTP_PORT, AppPlan, Artifact, Kind, RunUnit, probe_from_spec
from shoal.domain.ports import (
    Console,
    DatabaseConnection,
    InstanceState,
    LogSink,
    PieceSink,
    RoutePublisher,
    SourcePolicy,
)
from shoal.domain.routing import Backend, StaticSite, Upstream
from shoal.runtime.buildpacks import Provisioner
from shoal.runtime.local.bindings import Bindings, Clusters
from shoal.runtime.local.build import Builder, BuildResult
from shoal.runtime.local.console import Consoles
from shoal.runtime.local.databases import DevDatabases
from shoal.runtime.local.environment import values, with_port
from shoal.runtime.local.functions import read_activations
from shoal.runtime.local.groups import ProcessRecords
from shoal.runtime.local.identity import Isolation
from shoal.runtime.local.instances import Instances
from shoal.runtime.local.listening import unhealthy
from shoal.runtime.local.offline import custom_page, page_for
from shoal.runtime.local.reaper import Reaper
from shoal.runtime.local.records import AppRecord, DeploymentRecord, InstanceRecord, Output
from shoal.runtime.local.reports import ProcessReports
from shoal.runtime.local.sources import LocalSources, SourceCache, source_ref
from shoal.runtime.local.supervisor import ProcessSpec, Supervisor
from shoal.runtime.local.usage import UsageMeter

log = logging.getLogger("shoal.runtime")
LEFTOVER_GRACE_SECONDS = 10.0


class LocalRuntime:
    name = "local"

    def __init__(self, data_dir: Path, routes: RoutePublisher, host_env: dict[str, str],
                 box: SecretBox | None = None, databases: DevDatabases | None = None,
                 clusters: Clusters = lambda name: None, usage: UsageMeter | None = None,
                 reaper: Reaper | None = None, sources: SourcePolicy | None = None,
                 apps_dir: Path | None = None) -> None:
        self._isolation = Isolation(data_dir, apps_dir)  # a user of its own per app, when shoal is root
        self._bindings = Bindings(box, databases or DevDatabases(data_dir / "postgres"), clusters)
        # Without the platform's policy (a runtime made on its own, as in tests) any path but the data dir.
        self._sources = SourceCache(data_dir / "cache" / "git", sources or LocalSources(data_dir, (Path("/"),)))
        self._builder = Builder(self._isolation.builds_root, in_use=self._app_dirs_in_use,
                                provisioner=Provisioner(self._isolation.toolchains))
        self._checkouts = data_dir / "checkouts"
        self._routes = routes
        self._host_env = host_env
        self._apps: dict[str, AppRecord] = {}
        self._by_instance: dict[str, Output] = {}
        # With a reaper (several servers), every instance dies with this server, even by kill -9.
        self._reaper = reaper
        records = ProcessRecords(data_dir / "runtime" / "processes")
        records.end_leftovers(grace=LEFTOVER_GRACE_SECONDS)  # what a killed shoal left running, before anything starts
        self._usage = usage or UsageMeter()
        reports = ProcessReports(self._by_instance, self._usage)
        self._supervisor = Supervisor(on_output=reports.output, on_exit=reports.crashed, on_ready=reports.readiness,
                                      groups=(reaper.started, reaper.stopped) if reaper else None, records=records,
                                      on_piece=reports.piece)
        self._instances = Instances(self._supervisor, self._bindings, self._usage, self._by_instance, self._env,
                                    self._user)
        self._background: set[asyncio.Task[None]] = set()
        self._consoles = Consoles()

    def _app_dirs_in_use(self) -> list[Path]:
        """Builds that running instances use: pruning old builds must never remove these."""
        return [u.build.app_dir for app in self._apps.values() for dep in app.deployments.values()
                for u in dep.units.values() if u.build is not None]

    def _deployment(self, plan: AppPlan, log: LogSink) -> DeploymentRecord:
        app = self._apps.setdefault(plan.app_id, AppRecord())
        found = app.deployments.get(plan.deployment_id)
        if found is None:
            found = app.deployments[plan.deployment_id] = DeploymentRecord(plan, log)
        return found

    # -- build -----------------------------------------------------------------------------------

    async def fetch(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> str:
        ref = source_ref(unit.source, plan.account_id)
        if ref is None:
            raise StepFailed("BuildJobFailed", f"{unit.name} uses an image source, which needs a container engine: "
                                               "use the container runtime (shoal serve --runtime container)")
        return await self._sources.fetch(ref, lambda line: log("BUILD", unit.name, line), unit.commit)

    async def build(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> Artifact:
        result = await self._build(plan, unit, log, force=plan.force_build)
        self._deployment(plan, log).record(unit).build = result
        return Artifact("directory", str(result.build_dir), result.reused)

    async def _build(self, plan: AppPlan, unit: RunUnit, log: LogSink, force: bool) -> BuildResult:
        ref = source_ref(unit.source, plan.account_id)
        if ref is None or unit.commit is None:
            raise StepFailed("BuildJobFailed", f"{unit.name} has no fetched source shoal can build")
        checkout = self._checkouts / plan.deployment_id / unit.name
        await asyncio.to_thread(shutil.rmtree, checkout, True)
        try:
            await self._sources.export(ref, unit.commit, checkout, lambda line: log("BUILD", unit.name, line))
            owner = await asyncio.to_thread(self._isolation.owner, plan.app_id)
            return await self._builder.build(
                app_id=plan.app_id, unit=unit, commit=unit.commit, checkout=checkout,
                build_env=values(unit.build_env, self._bindings.value_of(plan, unit.name, True)),
                force=force, log=functools.partial(log, "BUILD", unit.name), owner=owner,
                piece=functools.partial(log.piece, "BUILD", unit.name) if isinstance(log, PieceSink) else None)
        finally:
            await asyncio.to_thread(shutil.rmtree, checkout, True)

    async def _built(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> BuildResult:
        """The unit's build: in memory, else from the artefact the deployment recorded, else made again
        (after shoal restarted, or for a restart deployment reusing the active one's build)."""
        record = self._deployment(plan, log).record(unit)
        if record.build is None and unit.artifact is not None and unit.artifact.kind == "directory":
            record.build = self._builder.load(Path(unit.artifact.location), unit)
        if record.build is None:
            commit = unit.commit or await self.fetch(plan, unit, log)
            record.build = await self._build(plan, replace(unit, commit=commit), log, force=False)
        return record.build

    # -- run -------------------------------------------------------------------------------------

    def _env(self, plan: AppPlan, unit: RunUnit, build: BuildResult, port: int | None) -> dict[str, str]:
        """The instance's own variables over its build's over the few host ones; an isolated app's
        HOME and TMPDIR are its own, never shoal's."""
        own = with_port(values(unit.run_env, self._bindings.value_of(plan, unit.name, False)), port)
        return {**self._host_env, **self._isolation.env(plan.app_id), **build.env, **own}

    def _user(self, plan: AppPlan) -> tuple[int, int] | None:
        return self._isolation.user(plan.app_id)

    async def provision_database(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        await self._bindings.provision(plan, unit, log)

    async def start(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        record = self._deployment(plan, log).record(unit)
        if record.started:
            return  # idempotent: a repeated step after a crash finds it running
        build = await self._built(plan, unit, log)
        await self._bindings.ensure(plan, log)
        if unit.runs_continuously:
            _check_command(unit, build)
            await self._instances.start(plan, record, build, unit.instance_count, log)
        elif unit.kind == Kind.FUNCTION:
            await self._instances.start_gateway(plan, record, build, log, self._host_env)
        elif unit.scheduled and unit.schedule is not None:
            log("DEPLOY", unit.name, f"scheduled {unit.name}: {unit.schedule.cron} ({unit.schedule.time_zone})")
        record.started = True

    async def wait_healthy(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        record = self._deployment(plan, log).record(unit)
        if not record.started:
            # shoal restarted after this unit's start step: what it started died with the old
            # process, so start it again rather than report health nothing has.
            await self.start(plan, unit, log)
        # Without a readiness check (workers) the wait is as patient as a default check would be.
        timeout = (unit.readiness or probe_from_spec(None, DEFAULT_HTTP_PORT)).patience_seconds
        for instance in record.instances:
            if not await self._supervisor.wait_ready(instance.name, timeout):
                raise StepFailed("ContainerHealthChecksFailed", self._unhealthy(unit, instance))
            log("DEPLOY", unit.name, f"instance {instance.name} is healthy")

    def _unhealthy(self, unit: RunUnit, instance: InstanceRecord) -> str:
        live = next((i for i in self._supervisor.instances() if i.name == instance.name), None)
        return unhealthy(unit.name, instance.port, live.pid if live else None,
                         live.last_exit_code if live else None, list(live.tail) if live else [],
                         out_of_memory=self._usage.oom_total(instance.name) > 0)

    async def switch_traffic(self, plan: AppPlan, log: LogSink) -> None:
        app = self._apps.setdefault(plan.app_id, AppRecord())
        deployment = self._deployment(plan, log)
        await self._ensure_running(plan, log)  # after a restart of shoal: never switch to nothing
        backends = self._backends(deployment)
        offline_page, error_page = await _pages(plan, log)
        # plan.secure_headers (ingress.secure_header, issue 13): set/removed on every answer of the app.
        self._routes.publish(plan.app_id, list(plan.hosts), list(plan.routes), backends, offline_page, plan.min_tls,
                             error_page, plan.secure_headers)
        app.live = plan.deployment_id
        app.switched_at = asyncio.get_running_loop().time()

    def _backends(self, deployment: DeploymentRecord) -> dict[str, Backend]:
        """What the ingress sends each routed component's requests to: a service's ready instances
        first, a static site's files."""
        backends: dict[str, Backend] = {}
        ready = {inst.name: inst.ready for inst in self._supervisor.instances()}
        for name, record in deployment.units.items():
            unit = record.unit
            if unit.kind in (Kind.SERVICE, Kind.FUNCTION):
                record.upstream = upstream = Upstream([], http2=unit.protocol == "HTTP2")
                record.published_at = time.monotonic()
                for instance in record.instances:
                    self._instances.serve(record, instance, ready.get(instance.name, False))
                backends[name] = upstream
            elif unit.static is not None and record.build is not None and record.build.static_root:
                docs = unit.static
                backends[name] = StaticSite(record.build.static_root, docs.index_document, docs.error_document,
                                            docs.catchall_document)
        return backends

    async def stop(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        app = self._apps.setdefault(plan.app_id, AppRecord())
        found = [d.units.pop(unit.name) for deployment_id, d in app.deployments.items()
                 if deployment_id != plan.deployment_id and unit.name in d.units]
        names = [i.name for record in found for i in record.instances]
        if unit.kind == Kind.SERVICE and names:
            # Requests that reached it before the switch may finish; the drain counts from the switch.
            drain = max(r.unit.termination.drain_seconds for r in found)
            await asyncio.sleep(max(0.0, app.switched_at + drain - asyncio.get_running_loop().time()))
        await self._instances.stop(names)
        for name in names:
            log("DEPLOY", unit.name, f"stopped instance {name}")
        if found and unit.scheduled:
            log("DEPLOY", unit.name, f"unscheduled {unit.name}")

    # -- jobs ------------------------------------------------------------------------------------

    async def run_job(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        build = await self._built(plan, unit, log)
        await self._bindings.ensure(plan, log)
        if not build.run_command:
            raise StepFailed("ContainerCommandNotExecutable", f"job {unit.name} has no run_command")
        name = f"{plan.app_name}-{unit.name}-{plan.deployment_id[:8]}-job"
        self._by_instance[name] = Output(log, unit.name, "DEPLOY")
        spec = ProcessSpec(name=name, command=build.run_command, cwd=build.app_dir,
                           env=self._env(plan, unit, build, None), restart=False,
                           grace_period_seconds=unit.termination.grace_period_seconds, app_id=plan.app_id,
                           user=self._user(plan))
        try:
            code = await self._supervisor.run_once(spec, timeout=unit.timeout_seconds)
        except TimeoutError as exc:
            raise StepFailed("ContainerExitNonZero", f"job {unit.name} did not finish within "
                                                     f"{unit.timeout_seconds:.0f} s and was stopped") from exc
        finally:
            self._by_instance.pop(name, None)
        if code != 0:
            raise StepFailed("ContainerExitNonZero", f"job {unit.name} exited with status {code}")

    # -- what runs ---------------------------------------------------------------------------------

    def instances(self, app_id: str) -> list[InstanceState]:
        """What runs of the app now, with each instance's CPU (percent of its size's CPUs, over the
        last second or more) and memory."""
        supervised = {inst.name: inst for inst in self._supervisor.instances()}
        found = []
        for deployment_id, deployment in list(self._apps.get(app_id, AppRecord()).deployments.items()):
            for record in list(deployment.units.values()):
                if record.unit.kind == Kind.FUNCTION:
                    continue  # a functions gateway is not an instance DigitalOcean would list
                for instance in list(record.instances):
                    live = supervised.get(instance.name)
                    if live is not None and live.state not in ("stopped", "exited"):
                        found.append(self._instances.state(deployment_id, record, instance, live))
        return found

    def activations(self, app_id: str, deployment_id: str) -> dict[str, Activations]:
        """``ActivationQuery``: each functions component's activation totals, from its gateway."""
        deployment = self._apps.get(app_id, AppRecord()).deployments.get(deployment_id)
        found = {}
        for record in list(deployment.units.values()) if deployment else []:
            for instance in list(record.instances) if record.unit.kind == Kind.FUNCTION else []:
                totals = read_activations(instance.port, instance.stats_token) if instance.port else None
                if totals is not None and instance.stats_token:
                    found[record.unit.name] = totals
        return found

    async def scale(self, plan: AppPlan, unit: RunUnit, count: int, log: LogSink,
                    woken: Callable[[], None] | None = None) -> int:
        """``InstanceScaler``: more or fewer instances of a running service or worker (0: asleep)."""
        deployment = self._apps.get(plan.app_id, AppRecord()).deployments.get(plan.deployment_id)
        record = deployment.units.get(unit.name) if deployment else None
        if record is None or not record.started or not record.unit.runs_continuously:
            return len(record.instances) if record else 0
        return await self._instances.scale(plan, record, count, log, woken)

    def idle_seconds(self, plan: AppPlan, unit: RunUnit) -> float | None:
        deployment = self._apps.get(plan.app_id, AppRecord()).deployments.get(plan.deployment_id)
        record = deployment.units.get(unit.name) if deployment else None
        if record is None or record.upstream is None:
            return None
        return time.monotonic() - max(record.upstream.last_used, record.published_at)

    def database_connections(self, app_id: str) -> list[DatabaseConnection]:
        return self._bindings.connections(app_id)

    async def reset_database_password(self, app_id: str, component: str) -> None:
        await self._bindings.reset_password(app_id, component)

    async def open_console(self, app_id: str, deployment_id: str, component: str, instance: str) -> Console:
        """``doctl apps console`` (issue 13 item 1): a shell in the instance's working tree and
        environment, as its user when its ProcessSpec carries one (``console.py``)."""
        deployment = self._apps.get(app_id, AppRecord()).deployments.get(deployment_id)
        record = deployment.units.get(component) if deployment else None
        live = {i.name: i for i in self._supervisor.instances() if i.pid is not None}
        if record is None or instance not in live or instance not in {i.name for i in record.instances}:
            raise NotFound(f"instance {instance!r} of {component} is not running")
        spec, pid = live[instance].spec, live[instance].pid

        def running() -> bool:  # the same process still runs it: a restart is a new instance process
            return any(i.name == instance and i.pid == pid for i in self._supervisor.instances())

        return await self._consoles.open(spec.cwd, spec.env, getattr(spec, "uid", None), getattr(spec, "gid", None),
                                         running=running)

    # -- retire, discard, remove -----------------------------------------------------------------

    async def _stop_deployment(self, app_id: str, deployment_id: str, drain: bool) -> None:
        deployment = self._apps.setdefault(app_id, AppRecord()).deployments.pop(deployment_id, None)
        self._bindings.forget_deployment(deployment_id)
        if deployment is None:
            return
        records = list(deployment.units.values())
        if drain:
            drains = [r.unit.termination.drain_seconds for r in records if r.unit.kind == Kind.SERVICE and r.instances]
            await asyncio.sleep(min(drains, default=0))
        await self._instances.stop([i.name for r in records for i in r.instances])

    async def retire(self, app_id: str, deployment_id: str) -> None:
        if self._apps.setdefault(app_id, AppRecord()).live == deployment_id:
            return
        task = asyncio.get_running_loop().create_task(self._stop_deployment(app_id, deployment_id, drain=True))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def discard(self, app_id: str, deployment_id: str) -> None:
        if self._apps.setdefault(app_id, AppRecord()).live != deployment_id:
            await self._stop_deployment(app_id, deployment_id, drain=False)

    async def remove_app(self, app_id: str) -> None:
        self._routes.withdraw(app_id)
        app = self._apps.get(app_id)
        if app:
            await asyncio.gather(*(self._stop_deployment(app_id, d, drain=False) for d in list(app.deployments)))
        self._apps.pop(app_id, None)
        await self._bindings.drop_app(app_id)
        await asyncio.to_thread(self._isolation.remove, app_id)

    async def release(self, app_id: str) -> None:
        """Another server drives the app now: its routes and processes go; its dev databases and
        builds stay (the owner's databases are its own, on its machine)."""
        self._routes.withdraw(app_id)
        app = self._apps.get(app_id)
        if app:
            await asyncio.gather(*(self._stop_deployment(app_id, d, drain=False) for d in list(app.deployments)))
        self._apps.pop(app_id, None)

    async def _ensure_running(self, plan: AppPlan, log: LogSink) -> None:
        """Start what the plan runs and this process has not started (all of it, after shoal
        restarted), and wait for the instances it started to be healthy."""
        deployment = self._deployment(plan, log)
        units = [u for u in plan.running if u.kind not in (Kind.DATABASE, Kind.JOB) or u.scheduled]
        started = [u for u in units if not deployment.record(u).started]
        for unit in started:
            await self.start(plan, unit, log)
        for unit in started:
            if unit.runs_continuously:
                await self.wait_healthy(plan, unit, log)

    async def restore(self, plan: AppPlan, log: LogSink) -> None:
        await self.switch_traffic(plan, log)  # which starts everything first
        log("RUN", "deploy", "restarted after shoal restarted")

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._consoles.close_all()
        await self._supervisor.stop_all(grace=10)
        self._usage.close()
        if self._reaper is not None:
            await asyncio.to_thread(self._reaper.close)
        await self._bindings.close()


def _check_command(unit: RunUnit, build: BuildResult) -> None:
    if not build.run_command:
        raise StepFailed("ContainerCommandNotExecutable",
                         f"{unit.name} has no run command: set run_command in the spec or add a "
                         f"Procfile '{'web' if unit.kind == Kind.SERVICE else 'worker'}:' line")


async def _pages(plan: AppPlan, log: LogSink) -> tuple[str | None, str | None]:
    """The offline page (only while the app is offline) and the app's custom error page, fetched now."""
    offline_page = await page_for(plan.app_name, plan.maintenance.offline_page_url, log) if plan.offline else None
    error_page = await custom_page(plan.error_page_url, "error page", log) if plan.error_page_url else None
    return offline_page, error_page

