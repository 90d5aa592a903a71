"""The one place that wires settings → store → engine → api, and runs the listeners.

Nothing else builds engines, sessions or apps: they are made here from one ``Settings`` and
passed down.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import getpass
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from shoal.api import build_api
from shoal.api.context import ApiContext
from shoal.api.ratelimit import RateLimiter
from shoal.api.wire import IngressAddress
from shoal.core.clock import Clock, SystemClock
from shoal.core.errors import Unavailable
from shoal.core.secrets import SecretBox
from shoal.core.settings import Settings
from shoal.core.signing import Signer
from shoal.datadir import secure, sqlite_path
from shoal.domain.accounts import ADMIN_ACCOUNT
from shoal.domain.ports import ActivationQuery, InstanceScaler, Runtime, TrafficStore
from shoal.domain.traffic import TrafficMeter
from shoal.engine.accounts import AccountsService, IssuedToken
from shoal.engine.alerts import AlertsEngine
from shoal.engine.autoscaler import Autoscaler
from shoal.engine.apps import AppsService
from shoal.engine.clusters import ClustersService
from shoal.engine.deployer import Deployer
from shoal.engine.deployments import DeploymentsService
from shoal.engine.events import EventsService
from shoal.engine.forwarding import LogForwarding
from shoal.engine.insights import InsightsService
from shoal.engine.logbuffer import LogBuffer
from shoal.engine.buildpacks import BuildpacksService
from shoal.engine.console import ConsoleService
from shoal.engine.databases import DatabasesService
from shoal.engine.logs import LogsService
from shoal.engine.metric_alerts import MetricAlerts
from shoal.engine.metrics import MetricsService, Observer
from shoal.engine.traffic import flushing_traffic
from shoal.ingress.server import Bind, Ingress
from shoal.ingress.table import RouteTable
from shoal.ingress.tls import SniContexts
from shoal.observability import Forwarder, Notifications, SenderFactory, parse_smtp_url
from shoal.observability.tls import ClientContexts
from shoal.runtime.container.engine import EngineUnavailable
from shoal.runtime.container.session import EngineSession, open_engine
from shoal.runtime.local.identity import isolated
from shoal.runtime.local.sources import LocalSources
from shoal.runtime.registry import RuntimeContext, create_runtime
from shoal.runtime.detector import SourceDetection
from shoal.spec.sealing import plaintexts
from shoal.store import Database, open_database
from shoal.local_ca import TlsFiles, ensure_server_tls

log = logging.getLogger("shoal")


@dataclass
class Platform:
    """Everything one shoal server is made of, built once by ``build_platform``."""

    settings: Settings
    clock: Clock
    database: Database
    box: SecretBox
    sources: LocalSources  # who may build from local paths (checked at the API and on every fetch)
    accounts: AccountsService
    apps: AppsService
    deployments: DeploymentsService
    routes: RouteTable
    traffic: TrafficMeter  # the ingress counts into it; _run flushes it to database.traffic
    runtime: Runtime
    deployer: Deployer
    operations: Operations

    def api(self, clock: Clock | None = None) -> ASGIApp:
        clock = clock or self.clock
        db = self.database
        ctx = ApiContext(apps=self.apps, deployments=self.deployments, accounts=self.accounts,
                         logs=LogsService(self.deployments, db.deployments, db.jobs),
                         events=EventsService(self.deployments, db.deployments, db.jobs, clock, db.scale_events),
                         insights=InsightsService(self.deployments, db.deployments, db.jobs, db.traffic,
                                                  self.traffic, self.runtime, db.alerts, self.operations.metrics),
                         signer=Signer(secret_key(self.settings.data_dir)), ingress=self.ingress_address(),
                         max_body_bytes=self.settings.api.max_body_bytes,
                         console=ConsoleService(self.deployments, self.runtime),
                         buildpacks=BuildpacksService(db.apps, self.deployments),
                         console_idle_seconds=self.settings.api.console_idle_seconds,
                         databases=DatabasesService(self.deployments, self.runtime),
                         detector=SourceDetection(self.sources, self.settings.data_dir / "cache" / "detect"))
        return build_api(ctx, RateLimiter(self.settings.api.rate_limits, clock))

    def ingress_address(self) -> IngressAddress:
        return ingress_address(self.settings)

    def clusters(self) -> ClustersService:
        return ClustersService(self.database.clusters, self.box, self.clock)

    def close(self) -> None:
        self.database.close()


def ingress_address(settings: Settings) -> IngressAddress:
    return IngressAddress(scheme="http", port=settings.ingress.port, tls_port=settings.ingress.tls_port)


@dataclass(frozen=True)
class Operations:
    """What watches running apps beside the deployer: log forwarding, alerts, metrics (with the
    metric rules and the autoscaler looking at them)."""

    forwarding: LogForwarding
    alerts: AlertsEngine
    metrics: MetricsService | None = None

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.forwarding.run(stop))
            group.create_task(self.alerts.run(stop))
            if self.metrics is not None:
                group.create_task(self.metrics.run(stop))

    def measuring(self, settings: Settings, database: Database, runtime: Runtime, logs: LogBuffer,
                  clock: Clock, traffic: TrafficMeter | None = None) -> Operations:
        """The same, with instance metrics sampled from ``runtime`` (and scaled through it, if it can)
        and each served component's requests from ``traffic`` (the ingress's meter)."""
        wanted = settings.observability
        scaler = runtime if isinstance(runtime, InstanceScaler) else None
        observers: list[Observer] = [MetricAlerts(self.alerts),
                                     Autoscaler(scaler, database.scale_events, self.alerts, logs.sink, clock)]
        metrics = MetricsService(database.deployments, runtime, clock, wanted.metrics_interval, wanted.window_scale,
                                 observers, traffic=traffic,
                                 activations=runtime if isinstance(runtime, ActivationQuery) else None)
        return replace(self, metrics=metrics)


def operations(settings: Settings, database: Database, clusters: Callable[[str], tuple[str, str] | None],
               clock: Clock) -> Operations:
    """Log forwarding and alert delivery, wired from ``settings.observability``."""
    wanted = settings.observability
    contexts = ClientContexts(wanted.log_forward_ca)
    forwarder = Forwarder(SenderFactory(contexts, wanted.logtail_endpoint), limit=wanted.log_forward_buffer)
    smtp = parse_smtp_url(wanted.smtp_url) if wanted.smtp_url else None
    api = settings.api
    base = f"https://{_hostport(socket.getfqdn() if api.host in ('0.0.0.0', '::') else api.host, api.port)}"
    alerts = AlertsEngine(database.alerts, database.deployments, Notifications(smtp, contexts), clock,
                          link=lambda app_id, dep_id: f"{base}/v2/apps/{app_id}/deployments/{dep_id}")
    database.changes.subscribe(alerts.changed)
    return Operations(LogForwarding(database.deployments, forwarder, clusters, clock), alerts)


def build_platform(settings: Settings, clock: Clock | None = None, engine: EngineSession | None = None) -> Platform:
    """Every service of one server, each made once: store, runtime, engine (the deployer is the queue
    the use cases hand deployments to), ingress table."""
    clock = clock or SystemClock()
    secure(settings.data_dir, sqlite_path(settings.store_url))
    database = open_database(settings.store_url)
    box = SecretBox(settings.secret_key or secret_key(settings.data_dir, SEALING_KEY))
    routes = RouteTable()
    clusters = ClustersService(database.clusters, box, clock)

    def cluster(name: str) -> tuple[str, str] | None:
        found = clusters.lookup(name)
        return (found.engine, found.url) if found else None

    admin = database.accounts.ensure_account(ADMIN_ACCOUNT, f"{ADMIN_ACCOUNT}@shoal.local")
    sources = LocalSources(settings.data_dir, settings.runtime.local_sources, admin.id)
    runtime = create_runtime(RuntimeContext(settings, routes, box, cluster, database.jobs, sources, engine))
    watching = operations(settings, database, cluster, clock)
    logs = LogBuffer(database.deployments.append_logs, clock, forward=watching.forwarding.offer)
    deployer = Deployer(database.deployments, runtime, clock, logs, database.jobs, database.ownership,
                        url_of=ingress_address(settings).domain_url,
                        secrets=lambda dep: plaintexts(dep.spec, box, dep.account_id),
                        job_failed=watching.alerts.job_failed)
    meter = TrafficMeter()  # the ingress counts into it; the store's flusher and the metrics sampler read it
    watching = watching.measuring(settings, database, runtime, logs, clock, traffic=meter)
    apps = AppsService(database.apps, database.deployments, clock, settings.ingress.apps_domain, queue=deployer,
                       box=box, sources=sources)
    accounts = AccountsService(database.accounts, clock)
    for subscriber in (apps.heard, accounts.heard, deployer.heard):
        database.changes.subscribe(subscriber)
    return Platform(settings=settings, clock=clock, database=database, box=box, sources=sources, accounts=accounts,
                    apps=apps,
                    deployments=DeploymentsService(database.apps, database.deployments, clock, queue=deployer),
                    routes=routes, traffic=meter, runtime=runtime, deployer=deployer, operations=watching)


SIGNING_KEY = "signing.key"  # signs log and console links
SEALING_KEY = "secrets.key"  # seals every app's SECRET values
_FORMER_NAMES = {SIGNING_KEY: "secret.key"}  # what shoal before 2026-12 called it (one letter from the other)


def secret_key(data_dir: Path, name: str = SIGNING_KEY) -> bytes:
    """An installation secret (``signing.key`` signs links, ``secrets.key`` seals app secrets), made
    once and kept in the data dir (0600); a data dir of an older shoal has its key renamed in place."""
    path = data_dir / name
    former = data_dir / _FORMER_NAMES.get(name, name)
    if not path.exists() and former != path and former.is_file():
        os.replace(former, path)
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(32))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    return path.read_bytes()


def write_admin_token(data_dir: Path, issued: IssuedToken) -> Path:
    path = data_dir / "admin-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(issued.value + "\n")
    os.chmod(path, 0o600)
    return path


def server_tls(settings: Settings) -> TlsFiles:
    if settings.api.tls_cert and settings.api.tls_key:
        return TlsFiles(ca_cert=settings.api.tls_cert, cert=settings.api.tls_cert, key=settings.api.tls_key)
    hosts = ["localhost", "127.0.0.1", "::1"]
    if settings.api.host not in hosts and settings.api.host not in ("0.0.0.0", "::"):
        hosts.append(settings.api.host)
    return ensure_server_tls(settings.tls_dir, hosts)


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve`` (several listeners share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listener(app: ASGIApp, host: str, port: int, tls: TlsFiles | None = None) -> _Listener:
    config = uvicorn.Config(app, host=host, port=port, lifespan="off", access_log=False, log_level="warning",
                            ssl_certfile=str(tls.cert) if tls else None, ssl_keyfile=str(tls.key) if tls else None,
                            timeout_graceful_shutdown=2)
    return _Listener(config)


async def _run(listeners: list[_Listener | _IngressListener], deployer: Deployer, meter: TrafficMeter,
               traffic: TrafficStore, operations: Operations) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for listener in listeners:
            listener.should_exit = True
        deployer.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    done = asyncio.Event()
    async with flushing_traffic(meter, traffic), asyncio.TaskGroup() as group:
        group.create_task(operations.run(done))
        engine = group.create_task(deployer.run())
        await deployer.ready.wait()  # unfinished deployments are resumed before the API answers
        for listener in listeners:
            group.create_task(listener.serve())
        await asyncio.wait([engine], return_when=asyncio.FIRST_COMPLETED)
        done.set()  # after the engine's last log lines: they get a short grace to be forwarded


def open_container_engine(settings: Settings) -> EngineSession:
    """The engine ``--runtime container`` uses, or ``Unavailable`` saying why there is none (at start,
    not at the first deployment)."""
    container = settings.runtime.container
    try:
        return open_engine(settings.data_dir, container.engine_url, dict(container.registry_mirrors))
    except EngineUnavailable as exc:
        raise Unavailable(f"--runtime container: {exc}") from exc


def serve(settings: Settings, announce: Callable[[str], None] = print) -> None:
    stack = contextlib.ExitStack()
    engine: EngineSession | None = None
    if settings.runtime.backend == "container":
        engine = open_container_engine(settings)  # before anything else: no engine, no start
        stack.callback(engine.close)
        announce(f"container engine: {engine.engine.info.describe()}")
    try:
        platform = build_platform(settings, engine=engine)
    except BaseException:
        stack.close()
        raise
    try:
        platform.database.listen(settings.change_feed)  # other servers' writes (PostgreSQL)
        issued = platform.accounts.bootstrap_admin(settings.bootstrap_token)
        if issued is not None:
            path = write_admin_token(settings.data_dir, issued)
            announce(f"admin token written to {path}")
        tls = server_tls(settings)
        deployer = platform.deployer
        api = _listener(platform.api(), settings.api.host, settings.api.port, tls)
        binds = _ingress_binds(platform.routes, settings)
        ingress = _IngressListener(Ingress(platform.routes, platform.traffic), binds)
        listeners: list[_Listener | _IngressListener] = [api, ingress]
        if settings.runtime.backend == "local" and not isolated():
            announce(f"warning: shoal is not running as root, so every app runs as {getpass.getuser()} like shoal "
                     "itself: apps are not isolated from each other or from shoal's data dir (README: Security model)")
        announce(f"shoal API on https://{_hostport(settings.api.host, settings.api.port)} (CA: {tls.ca_cert})")
        announce(f"shoal ingress on http://{_hostport(settings.ingress.host, settings.ingress.port)}")
        if settings.ingress.tls_host and settings.ingress.tls_port:
            announce(f"shoal ingress on https://{_hostport(settings.ingress.tls_host, settings.ingress.tls_port)}")
        for bind in binds:
            if bind.tls is not None and settings.ingress.tls_certs is not None:
                names = ", ".join(bind.tls.provided_names) or "no host"
                announce(f"your certificates in {settings.ingress.tls_certs} cover {names}")
                for problem in bind.tls.problems:
                    announce(f"not used: {problem}")
        # Everything built so far lives as long as the server: keep it out of the collector's
        # sweeps, which otherwise walk the whole heap and show up as latency spikes under load.
        gc.collect()
        gc.freeze()
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_run(listeners, deployer, platform.traffic, platform.database.traffic, platform.operations))
    finally:
        stack.close()
        platform.close()


class _IngressListener:
    """The ingress beside the uvicorn listeners, stopped the same way (``should_exit``)."""

    def __init__(self, ingress: Ingress, binds: list[Bind]) -> None:
        self._ingress = ingress
        self._binds = binds
        self._stop = asyncio.Event()

    @property
    def should_exit(self) -> bool:
        return self._stop.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._stop.set()

    async def serve(self) -> None:
        await self._ingress.run(self._binds, self._stop)


def _ingress_binds(routes: RouteTable, settings: Settings) -> list[Bind]:
    """Plain HTTP, and HTTPS when asked: per-host certificates chosen by SNI, minimum TLS versions per domain."""
    binds = [Bind(settings.ingress.host, settings.ingress.port)]
    if settings.ingress.tls_port is not None:
        binds.append(Bind(settings.ingress.tls_host or "127.0.0.1", settings.ingress.tls_port,
                          SniContexts(settings.tls_dir, routes.min_tls, provided=settings.ingress.tls_certs)))
    return binds


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed (it comes with uvicorn[standard]): its TLS and sockets are
    several times faster than the standard loop's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
