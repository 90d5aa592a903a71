"""The ``container`` runtime: every component in its own container, as DigitalOcean runs it.

Images come from ``builds`` (Dockerfile builds, buildpack builds in the stack image, pulled images);
services and workers run as supervised containers (``instances``) on one network per app, each
service instance with ``PORT`` = its ``http_port`` inside and published on 127.0.0.1 for the
ingress, limited to its instance size; jobs run to completion (``jobs``); static sites are served by
the ingress from the files copied out of their image. Traffic moves exactly as in the local
runtime: a deployment's instances go live only after their readiness checks pass, and the previous
deployment's are drained and stopped in the background.

Lifecycle: every container, network and built image carries this installation's ``shoal.owner``
label and the app / deployment / component it belongs to. A step repeated after a crash, and
``restore`` after shoal restarted (even after ``kill -9``), adopt the containers that still run
instead of starting them twice; containers of deployments nobody restores are removed. Removing an
app removes its containers, network, built images and dev databases; ``close`` stops what runs.

State: one record per deployment holding one per component (``records``), as in ``local``;
starting, adopting and scaling instance containers is ``scaling``'s part, and what each uses is
sampled in the background (``usage``). What really runs (``instances``) is asked of the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from shoal.core.errors import NotFound, Unavailable
from shoal.core.secrets import SecretBox
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import DEFAULT_HTTP_PORT, AppPlan, Artifact, Kind, RunUnit, probe_from_spec
from shoal.domain.ports import Console, DatabaseConnection, InstanceState, LogSink, RoutePublisher, SourcePolicy
from shoal.domain.routing import Backend, StaticSite, Upstream
from shoal.runtime.container import containers, images
from shoal.runtime.container.access import EngineAccess
from shoal.runtime.container.bindings import ContainerBindings
from shoal.runtime.container.builds import DEBIAN_CA_BUNDLE, ContainerBuilder, Image, app_images
from shoal.runtime.container.containers import Found, RunSpec
from shoal.runtime.container.forwarder import Forwarders
from shoal.runtime.container.instances import Supervisor
from shoal.runtime.container.jobs import run_job
from shoal.runtime.container.networks import Networks
from shoal.runtime.container.records import AppRecord, DeploymentRecord, UnitRecord
from shoal.runtime.container.scaling import Replicas
from shoal.runtime.container.specs import container_name, exec_command, own_port, run_spec
from shoal.runtime.container.usage import SAMPLE_SECONDS, UsageSampler
from shoal.runtime.local.bindings import Clusters
from shoal.runtime.local.console import Consoles
from shoal.runtime.local.databases import DevDatabases
from shoal.runtime.local.environment import values, with_port
from shoal.runtime.local.listening import listens_elsewhere
from shoal.runtime.local.offline import pages
from shoal.runtime.local.sources import SourceCache

log = logging.getLogger("shoal.runtime.container")
CLOSE_GRACE_SECONDS = 10


class ContainerRuntime:
    name = "container"

    def __init__(self, data_dir: Path, routes: RoutePublisher, access: EngineAccess, stack_image: str,
                 mirrors: dict[str, str] | None = None, box: SecretBox | None = None,
                 databases: DevDatabases | None = None, clusters: Clusters = lambda name: None,
                 ca_bundle: Path | None = DEBIAN_CA_BUNDLE, sources: SourcePolicy | None = None,
                 usage_interval: float = SAMPLE_SECONDS) -> None:
        self._access = access
        self._routes = routes
        self._bindings = ContainerBindings(box, databases or DevDatabases(data_dir / "postgres"), clusters,
                                           Forwarders())
        self._sites = data_dir / "sites"
        self._builder = ContainerBuilder(access, SourceCache(data_dir / "cache" / "git", sources),
                                         data_dir / "checkouts",
                                         self._sites, stack_image, mirrors or {}, box, ca_bundle)
        self._supervisor = Supervisor(access)
        self._replicas = Replicas(access, self._supervisor, self._instance_spec)
        self._usage = UsageSampler(access, usage_interval)
        self._networks = Networks(access)
        self._consoles = Consoles()
        self._apps: dict[str, AppRecord] = {}
        self._background: set[asyncio.Task[None]] = set()

    def _app(self, app_id: str) -> AppRecord:
        return self._apps.setdefault(app_id, AppRecord())

    def _deployment(self, plan: AppPlan) -> DeploymentRecord:
        app = self._app(plan.app_id)
        found = app.deployments.get(plan.deployment_id)
        if found is None:
            found = app.deployments[plan.deployment_id] = DeploymentRecord(plan)
        return found

    # -- build -----------------------------------------------------------------------------------

    async def fetch(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> str:
        if unit.kind == Kind.FUNCTION:
            raise StepFailed("BuildJobFailed", f"{unit.name} is a functions component; shoal has no functions "
                                               "runtime yet")
        return await self._builder.fetch(plan, unit, lambda line: log("BUILD", unit.name, line))

    async def build(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> Artifact:
        image = await self._build(plan, unit, log, plan.force_build)
        self._deployment(plan).record(unit).image = image
        return Artifact("image", image.reference, image.reused, image.digest or image.image_id)

    async def _build(self, plan: AppPlan, unit: RunUnit, log: LogSink, force: bool) -> Image:
        build_env = values(unit.build_env, self._bindings.value_of(plan, unit.name, True))
        return await self._builder.build(plan, unit, build_env, lambda line: log("BUILD", unit.name, line), force)

    async def _image(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> Image:
        """The unit's image: in memory, else the recorded artefact's, else built again."""
        record = self._deployment(plan).record(unit)
        if record.image is None and unit.artifact is not None and unit.artifact.kind == "image":
            with contextlib.suppress(StepFailed):  # gone (pruned, engine reset): built again below
                record.image = await self._builder.load(plan, unit, unit.artifact.location)
        if record.image is None:
            if unit.commit is None:
                unit = replace(unit, commit=await self.fetch(plan, unit, log))
            record.image = await self._build(plan, unit, log, force=False)
        return record.image

    # -- networks and environments ---------------------------------------------------------------

    async def _prepared(self, plan: AppPlan, log: LogSink) -> str:
        """The app's network, with its databases provisioned and forwarded onto it."""
        network = await self._networks.ensure(plan.app_id)
        await self._bindings.ensure(plan, log)
        await self._bindings.forward(plan, network.gateway, network.subnet)
        return network.name

    def _env(self, plan: AppPlan, unit: RunUnit) -> dict[str, str]:
        return with_port(values(unit.run_env, self._bindings.value_of(plan, unit.name, False)), own_port(unit))

    def _run_spec(self, plan: AppPlan, unit: RunUnit, image: Image, network: str, suffix: str,
                  **labels: str) -> RunSpec:
        engine = self._access.engine
        return run_spec(unit, image, name=container_name(engine.owner, plan, unit, suffix), network=network,
                        labels=engine.labels(app=plan.app_id, deployment=plan.deployment_id, component=unit.name,
                                             **labels), env=self._env(plan, unit))

    def _instance_spec(self, plan: AppPlan, unit: RunUnit, image: Image, network: str, index: int,
                       name: str) -> RunSpec:
        return self._run_spec(plan, unit, image, network, str(index), instance=name, kind=unit.kind.value)

    # -- run -------------------------------------------------------------------------------------

    async def provision_database(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        await self._bindings.provision(plan, unit, log)
        await self._prepared(plan, log)

    async def start(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        record = self._deployment(plan).record(unit)
        if record.started:
            return
        image = await self._image(plan, unit, log)
        if unit.runs_continuously:
            await self._start_instances(plan, record, image, await self._prepared(plan, log), log)
        elif unit.scheduled and unit.schedule is not None:
            log("DEPLOY", unit.name, f"scheduled {unit.name}: {unit.schedule.cron} ({unit.schedule.time_zone})")
        record.started = True

    async def _start_instances(self, plan: AppPlan, record: UnitRecord, image: Image, network: str,
                               log: LogSink) -> None:
        unit = record.unit
        if not image.run_command and image.workdir is not None:  # a buildpack image has no CMD of its own
            raise StepFailed("ContainerCommandNotExecutable",
                             f"{unit.name} has no run command: set run_command in the spec or add a "
                             f"Procfile '{'web' if unit.kind == Kind.SERVICE else 'worker'}:' line")
        await self._access.ready()
        self._usage.start(self._measured)
        await self._replicas.start(plan, record, image, network, log)

    def _measured(self) -> list[str]:
        """The containers whose usage is sampled: every supervised instance's that runs."""
        return [i.container_id for i in self._supervisor.instances()
                if i.container_id and i.state in ("starting", "running")]

    async def wait_healthy(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        record = self._deployment(plan).units.get(unit.name)
        if record is None:
            return
        timeout = (unit.readiness or probe_from_spec(None, DEFAULT_HTTP_PORT)).patience_seconds
        for inst in record.instances:
            if not await self._supervisor.wait_ready(inst.name, timeout):
                why = await self._supervisor.why_down(inst.name)
                elsewhere = None if why else listens_elsewhere(unit.name, await self._supervisor.listening(inst.name),
                                                               inst.spec.port)
                if elsewhere:
                    raise StepFailed("ContainerHealthChecksFailed", elsewhere)
                raise StepFailed("ContainerHealthChecksFailed",
                                 f"{unit.name} did not become healthy"
                                 + (f" on port {inst.spec.port}" if inst.spec.port else "")
                                 + (f": instance {inst.name} {why}" if why else "") + "; see its RUN logs")
            log("DEPLOY", unit.name, f"instance {inst.name} is healthy")

    async def switch_traffic(self, plan: AppPlan, log: LogSink) -> None:
        app = self._app(plan.app_id)
        backends = self._backends(self._deployment(plan))
        offline_page, error_page = await pages(plan, log)
        self._routes.publish(plan.app_id, list(plan.hosts), list(plan.routes), backends, offline_page, plan.min_tls,
                             error_page, plan.secure_headers)
        app.live = plan.deployment_id
        app.switched_at = asyncio.get_running_loop().time()

    def _backends(self, deployment: DeploymentRecord) -> dict[str, Backend]:
        backends: dict[str, Backend] = {}
        for name, record in deployment.units.items():
            unit = record.unit
            if unit.kind == Kind.SERVICE:
                record.upstream = upstream = Upstream([], http2=unit.protocol == "HTTP2")
                record.published_at = time.monotonic()
                for inst in record.instances:
                    self._replicas.serve(record, inst)
                backends[name] = upstream
            elif unit.static is not None and record.image is not None and record.image.static_root:
                docs = unit.static
                backends[name] = StaticSite(record.image.static_root, docs.index_document, docs.error_document,
                                            docs.catchall_document)
        return backends

    async def stop(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        app = self._app(plan.app_id)
        found = [d.units.pop(unit.name) for deployment_id, d in app.deployments.items()
                 if deployment_id != plan.deployment_id and unit.name in d.units]
        names = [i.name for record in found for i in record.instances]
        if unit.kind == Kind.SERVICE and names:
            drain = max(r.unit.termination.drain_seconds for r in found)
            await asyncio.sleep(max(0.0, app.switched_at + drain - asyncio.get_running_loop().time()))
        await self._stop_instances(names)
        for name in names:
            log("DEPLOY", unit.name, f"stopped instance {name}")
        if found and unit.scheduled:
            log("DEPLOY", unit.name, f"unscheduled {unit.name}")

    async def _stop_instances(self, names: list[str], grace: float | None = None) -> None:
        await self._replicas.stop(names, grace)

    # -- jobs ------------------------------------------------------------------------------------

    async def run_job(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        image = await self._image(plan, unit, log)
        network = await self._prepared(plan, log)
        if not image.run_command and image.workdir is not None:
            raise StepFailed("ContainerCommandNotExecutable", f"job {unit.name} has no run_command")
        await self._access.ready()
        spec = self._run_spec(plan, unit, image, network, "job", kind="job")
        await run_job(self._access, spec, unit, lambda line: log("DEPLOY", unit.name, line))

    # -- what runs ---------------------------------------------------------------------------------

    def instances(self, app_id: str) -> list[InstanceState]:
        """The app's running service and worker containers as the engine lists them, with the
        readiness shoal's checks last saw and what each used at the last sample (CPU as a percentage
        of its size's CPUs, over the last sampling interval; memory in bytes)."""
        if not self._access.opened:
            return []
        try:
            found = containers.listed(self._access.engine, app=app_id)
        except Exception:  # the engine is not answering: nothing is known to run
            log.exception("could not list the containers of app %s", app_id)
            return []
        states = []
        for item in found:
            name = item.labels.get("shoal.instance")
            if not item.running or not name or item.labels.get("shoal.kind") not in ("service", "worker"):
                continue
            inst = self._supervisor.get(name)
            deployment_id, component = item.labels.get("shoal.deployment", ""), item.labels.get("shoal.component", "")
            used = self._usage.usage(item.id)
            percent = None
            if used is not None and used.cpus is not None:
                percent = round(100 * used.cpus / max(self._cpus(app_id, deployment_id, component), 0.01), 2)
            states.append(InstanceState(deployment_id, component, name, bool(inst and inst.ready),
                                        inst.restarts if inst else 0, inst.started_at if inst else None,
                                        cpu_percent=percent, memory_bytes=used.memory_bytes if used else None))
        return states

    def _cpus(self, app_id: str, deployment_id: str, component: str) -> float:
        """The CPUs of the component's instance size (what its CPU percentage is of), as in ``local``."""
        deployment = self._apps.get(app_id, AppRecord()).deployments.get(deployment_id)
        record = deployment.units.get(component) if deployment else None
        return record.unit.size.cpus if record and record.unit.size else 1.0

    # -- scaling (InstanceScaler) ------------------------------------------------------------------

    def _unit_record(self, plan: AppPlan, unit: RunUnit) -> UnitRecord | None:
        deployment = self._apps.get(plan.app_id, AppRecord()).deployments.get(plan.deployment_id)
        return deployment.units.get(unit.name) if deployment else None

    async def scale(self, plan: AppPlan, unit: RunUnit, count: int, log: LogSink,
                    woken: Callable[[], None] | None = None) -> int:
        """``InstanceScaler``: more or fewer instance containers of a running service or worker (0: asleep)."""
        record = self._unit_record(plan, unit)
        if record is None or not record.started or not record.unit.runs_continuously:
            return len(record.instances) if record else 0
        return await self._replicas.scale(plan, record, count, log, woken)

    def idle_seconds(self, plan: AppPlan, unit: RunUnit) -> float | None:
        record = self._unit_record(plan, unit)
        if record is None or record.upstream is None:
            return None
        return time.monotonic() - max(record.upstream.last_used, record.published_at)

    # -- retire, discard, remove, restore ----------------------------------------------------------

    async def _stop_deployment(self, app_id: str, deployment_id: str, drain: bool) -> None:
        deployment = self._app(app_id).deployments.pop(deployment_id, None)
        self._bindings.forget_deployment(deployment_id)
        if deployment is None:
            return
        records = list(deployment.units.values())
        if drain:
            drains = [r.unit.termination.drain_seconds for r in records if r.unit.kind == Kind.SERVICE and r.instances]
            await asyncio.sleep(min(drains, default=0))
        await self._stop_instances([i.name for r in records for i in r.instances])

    async def retire(self, app_id: str, deployment_id: str) -> None:
        if self._app(app_id).live == deployment_id:
            return
        task = asyncio.get_running_loop().create_task(self._stop_deployment(app_id, deployment_id, drain=True))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def discard(self, app_id: str, deployment_id: str) -> None:
        if self._app(app_id).live != deployment_id:
            await self._stop_deployment(app_id, deployment_id, drain=False)

    async def remove_app(self, app_id: str) -> None:
        """Its routes, containers (leftovers too), network, built images, static files and databases go."""
        self._routes.withdraw(app_id)
        app = self._apps.pop(app_id, None)
        if app:
            await asyncio.gather(*(self._stop_deployment_of(app, app_id, d) for d in list(app.deployments)))
        if self._access.opened:
            await self._access.call(containers.remove_labelled, grace_seconds=1, app=app_id)
            await self._access.call(lambda engine: images.remove(engine, app_images(engine, app_id)))
        await self._networks.remove(app_id)
        await asyncio.to_thread(shutil.rmtree, self._sites / app_id, True)
        await self._bindings.drop_app(app_id)

    async def release(self, app_id: str) -> None:
        """Another server drives the app now: its routes and containers here go; its images and dev
        databases stay."""
        self._routes.withdraw(app_id)
        app = self._apps.pop(app_id, None)
        if app:
            await asyncio.gather(*(self._stop_deployment_of(app, app_id, d) for d in list(app.deployments)))

    def database_connections(self, app_id: str) -> list[DatabaseConnection]:
        return self._bindings.connections(app_id)

    async def reset_database_password(self, app_id: str, component: str) -> None:
        await self._bindings.reset_password(app_id, component)

    async def open_console(self, app_id: str, deployment_id: str, component: str, instance: str) -> Console:
        """``doctl apps console``: a shell in the instance's own container (``exec`` through the engine's
        client under a pty), so it has the instance's files, environment and user."""
        deployment = self._apps.get(app_id, AppRecord()).deployments.get(deployment_id)
        record = deployment.units.get(component) if deployment else None
        found = next((i for i in record.instances if i.name == instance), None) if record else None
        live = self._supervisor.get(instance)
        if found is None or live is not found or not found.container_id or found.state in ("stopped", "backoff"):
            raise NotFound(f"instance {instance!r} of {component} is not running")
        engine = await self._access.ready()
        command = exec_command(engine, found.container_id, found.spec.workdir)
        if command is None:
            raise Unavailable(f"a console needs the {engine.info.name} command-line client on shoal's machine")
        return await self._consoles.open(self._sites.parent, self._access.client_env(), None, None, command)

    async def _stop_deployment_of(self, app: AppRecord, app_id: str, deployment_id: str) -> None:
        deployment = app.deployments.pop(deployment_id)
        self._bindings.forget_deployment(deployment_id)
        await self._stop_instances([i.name for r in deployment.units.values() for i in r.instances], grace=1)

    async def restore(self, plan: AppPlan, log: LogSink) -> None:
        """The active deployment back after shoal restarted: running containers adopted, the rest
        started from the recorded images; containers of deployments no one restores are removed."""
        await self._remove_orphans(plan)
        units = [u for u in plan.running if u.kind not in (Kind.DATABASE, Kind.JOB) or u.scheduled]
        for unit in units:
            await self.start(plan, unit, log)
        for unit in units:
            if unit.runs_continuously:
                await self.wait_healthy(plan, unit, log)
        await self.switch_traffic(plan, log)
        log("RUN", "deploy", "restarted after shoal restarted")

    async def _remove_orphans(self, plan: AppPlan) -> None:
        known = {plan.deployment_id, *self._app(plan.app_id).deployments}
        found: list[Found] = await self._access.call(containers.listed, app=plan.app_id)
        for item in found:
            if item.labels.get("shoal.deployment") not in known and item.labels.get("shoal.kind") in ("service",
                                                                                                     "worker"):
                await self._access.call(containers.stop, item.id, 1)
                await self._access.call(containers.remove, item.id)

    async def close(self) -> None:
        await self._usage.close()
        for task in self._background:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._consoles.close_all()
        await self._supervisor.stop_all(grace=CLOSE_GRACE_SECONDS)
        await self._bindings.close()
        await asyncio.to_thread(self._access.close)

