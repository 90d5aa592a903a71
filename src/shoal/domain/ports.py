"""Ports: the Protocols the engine needs from adapters (store now; runtime and ingress later)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

from shoal.core.errors import Unavailable
from shoal.domain.accounts import Account, Token
from shoal.domain.alerts import Firing
from shoal.domain.apps import App, Page
from shoal.domain.component_metrics import Activations
from shoal.domain.deployments import Deployment
from shoal.domain.detection import DetectRequest, Detected
from shoal.domain.forwarding import Destination, Dropped, Record
from shoal.domain.jobs import JobInvocation
from shoal.domain.logs import LogLine
from shoal.domain.plan import AppPlan, Artifact, RunUnit
from shoal.domain.routing import Backend, Route, SecureHeaders
from shoal.domain.scaling import ScaleEvent
from shoal.domain.traffic import ComponentTraffic, TrafficCounts


class AppStore(Protocol):
    """App persistence; every write is one transaction."""

    def insert_app(self, app: App, deployment: Deployment | None = None) -> None: ...

    def get_app(self, account_id: str, app_id: str) -> App | None: ...

    def get_app_by_name(self, account_id: str, name: str) -> App | None: ...

    def list_apps(self, account_id: str, offset: int, limit: int) -> Page: ...

    def update_app_spec(self, account_id: str, app_id: str, spec: dict[str, Any], region: str,
                        updated_at: datetime, deployment: Deployment | None = None,
                        pins: dict[str, str | None] | None = None) -> App | None: ...

    def set_pins(self, app_id: str, pins: dict[str, str | None]) -> None: ...

    def set_build_config(self, app_id: str, build_config: dict[str, Any]) -> None: ...

    def delete_app(self, account_id: str, app_id: str) -> bool: ...

    def app_names(self, account_id: str, prefix: str) -> set[str]: ...


class AccountStore(Protocol):
    def ensure_account(self, name: str, email: str) -> Account: ...

    def insert_token(self, token: Token, token_hash: str) -> None: ...

    def token_by_hash(self, token_hash: str) -> tuple[Token, Account] | None: ...

    def list_tokens(self) -> list[tuple[Token, Account]]: ...

    def revoke_token(self, token_id_prefix: str, when: datetime) -> Token | None: ...

    def count_tokens(self) -> int: ...


class SourcePolicy(Protocol):
    """Which sources an account may build from (local paths are the operator's to allow)."""

    def refusal(self, account_id: str, url: str) -> str | None: ...


class LogSink(Protocol):
    """Where a runtime writes what a step prints: ``stage`` is BUILD, DEPLOY, RUN or RUN_RESTARTED."""

    def __call__(self, stage: str, component: str, line: str) -> None: ...


@runtime_checkable
class PieceSink(Protocol):
    """A ``LogSink`` that also takes a line too long to hold whole in pieces: every piece but the
    last goes to ``piece``, the last one as a line, so secrets are masked across the cuts (the
    sink joins the pieces before masking them). Runtimes check for it (``isinstance``)."""

    def __call__(self, stage: str, component: str, line: str) -> None: ...

    def piece(self, stage: str, component: str, line: str) -> None: ...


@dataclass(frozen=True)
class InstanceState:
    """One instance that really runs now, as its runtime sees it (``/instances`` and ``/health``)."""

    deployment_id: str
    component: str
    name: str  # instance_name: "<app>-<component>-<deployment[:8]>-<i>"
    ready: bool
    restarts: int = 0
    started_at: datetime | None = None
    cpu_percent: float | None = None  # where the runtime measures it
    memory_bytes: int | None = None


@dataclass(frozen=True)
class DatabaseConnection:
    """How a client on shoal's host reaches one of an app's databases (``database_connection_details``)."""

    component: str
    engine: str  # PG, MYSQL, REDIS, ...: what ``url`` speaks
    host: str
    port: int
    user: str
    password: str
    database: str
    url: str
    ssl_mode: str = ""  # dev databases here have no TLS
    managed: bool = True  # False: a production cluster the operator registered, whose password shoal cannot reset


class InstanceQuery(Protocol):
    """What runs now: asked of the runtime by insights (``/instances``, ``/health``)."""

    def instances(self, app_id: str) -> list[InstanceState]: ...


@runtime_checkable
class ActivationQuery(Protocol):
    """A runtime that runs functions components and counts their activations: per component of
    the deployment, totals since its gateway started (the FUNCTIONS_* alert rules read them)."""

    def activations(self, app_id: str, deployment_id: str) -> dict[str, Activations]: ...


@runtime_checkable
class InstanceScaler(Protocol):
    """A runtime that can change how many instances of a running unit there are (autoscaling,
    inactivity sleep). Not every runtime can; the engine scales only through those that do."""

    async def scale(self, plan: AppPlan, unit: RunUnit, count: int, log: LogSink,
                    woken: Callable[[], None] | None = None) -> int:
        """Run ``count`` instances of ``unit`` of this live deployment and say how many run now; a
        new instance takes traffic once it is ready, a removed one gets none before it stops. ``0``
        puts a service to sleep: the ingress holds its next request while the unit's instances start
        again, and then ``woken`` is called."""

    def idle_seconds(self, plan: AppPlan, unit: RunUnit) -> float | None:
        """Seconds since the service was last sent a request (or went live); None when unknown."""


class Console(Protocol):
    """An interactive shell inside one running instance: what ``doctl apps console`` talks to.

    One output stream (the terminal's), as on DigitalOcean: no separate stderr, no exit code.
    """

    async def read(self) -> bytes:
        """The next output the shell wrote; ``b""`` once it has ended."""

    def write(self, data: bytes) -> None:
        """Keystrokes, as typed (the terminal echoes them)."""

    def resize(self, columns: int, rows: int) -> None: ...

    async def close(self) -> None:
        """End the shell and everything it started; safe to call more than once."""


class Runtime(Protocol):
    """A backend that builds and runs an app's run units (``simulate``, ``local``, ``container``, ...).

    It reads the typed plan only. Every step is idempotent for the same deployment and unit, because
    after a crash the engine repeats the step it was in. Failures a user can act on raise
    ``StepFailed`` with DigitalOcean's reason code.
    """

    name: str

    async def fetch(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> str:
        """Get the unit's source and say which revision it is (a commit, or an image digest). When
        ``unit.commit`` is already set (a rollback, a restart) that exact revision is fetched."""

    async def build(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> Artifact:
        """Build ``unit.commit``; an unchanged input reuses the earlier artefact (``reused``)."""

    async def provision_database(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None: ...

    async def run_job(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        """Run a job to completion; a non-zero exit raises ``StepFailed``."""

    async def start(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        """Bring the unit's instances up (services, workers), or get it ready to be served (static
        sites) or scheduled (SCHEDULED jobs)."""

    async def wait_healthy(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None: ...

    async def stop(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        """The app is archived: stop what its earlier deployments run for ``unit``. Called after
        ``switch_traffic``, so nobody is sent to it any more; whatever is not running is left alone."""

    async def switch_traffic(self, plan: AppPlan, log: LogSink) -> None:
        """Publish the deployment's routes, or the offline page while the app is offline."""

    async def retire(self, app_id: str, deployment_id: str) -> None:
        """An earlier deployment was replaced: drain and stop what it runs (in the background)."""

    async def discard(self, app_id: str, deployment_id: str) -> None:
        """A deployment that never went live ended: stop what it started."""

    async def remove_app(self, app_id: str) -> None: ...

    async def release(self, app_id: str) -> None:
        """Another server drives the app now: stop what runs for it here and withdraw its routes,
        leaving its data (databases, builds) alone."""

    async def restore(self, plan: AppPlan, log: LogSink) -> None:
        """Bring an active deployment back up after shoal itself restarted (reusing its builds,
        adopting what still runs)."""

    def instances(self, app_id: str) -> list[InstanceState]:
        """What runs for the app now (every deployment's instances), as the backend really sees it."""

    def database_connections(self, app_id: str) -> list[DatabaseConnection]:
        """The databases the app's deployments were given here, as a client on this host reaches them."""

    async def reset_database_password(self, app_id: str, component: str) -> None:
        """A new password for a dev database, in force at once; the next deployment hands it to the app.
        ``BadRequest`` for a database shoal does not manage, ``NotFound`` for one never provisioned."""

    async def open_console(self, app_id: str, deployment_id: str, component: str, instance: str) -> Console:
        """A shell inside ``instance`` of ``component``, as the instance runs (its working tree,
        environment and user); ``NotFound`` when that instance is not running."""

    async def close(self) -> None: ...


class DeploymentStore(Protocol):
    def add_deployment(self, dep: Deployment, now: datetime) -> list[str]: ...

    def get_deployment(self, app_id: str, deployment_id: str) -> Deployment | None: ...

    def deployment_by_id(self, deployment_id: str) -> Deployment | None: ...

    def deployments_by_ids(self, ids: set[str]) -> dict[str, Deployment]: ...

    def newest_deployments(self, app_ids: list[str]) -> dict[str, list[Deployment]]: ...

    def list_deployments(self, app_id: str, offset: int, limit: int,
                         types: set[str] | None = None) -> tuple[list[Deployment], int]: ...

    def save_deployment(self, dep: Deployment) -> Deployment | None: ...

    def go_live(self, dep: Deployment, now: datetime) -> Deployment | None: ...

    def unfinished_deployments(self) -> list[Deployment]: ...

    def active_deployment_id(self, app_id: str) -> str | None: ...

    def ingress_host(self, app_id: str) -> str | None: ...

    def active_deployments(self) -> list[Deployment]: ...

    def active_deployment(self, app_id: str) -> Deployment | None: ...

    def newest_unfinished(self, app_id: str) -> Deployment | None: ...

    def append_logs(self, lines: list[LogLine]) -> None: ...

    def read_logs(self, deployment_id: str, stages: set[str], component: str | None = None,
                  after_id: int = 0) -> list[tuple[int, LogLine]]: ...


@dataclass(frozen=True)
class Claims:
    """What one look at the database changed in this server's custody of apps."""

    gained: list[str] = field(default_factory=list)  # apps that were nobody's and are this server's now
    lost: list[str] = field(default_factory=list)  # apps this server held and may no longer drive


class Ownership(Protocol):
    """Which server drives which app: exactly one owner per app runs its pipeline, keeps its active
    deployment up and runs its scheduled jobs. A server that dies loses its apps with it.

    The methods do I/O (call them off the event loop) except ``owns``.
    """

    def owns(self, app_id: str) -> bool:
        """Whether this server holds the app now (no I/O)."""

    def claim(self, app_id: str) -> bool:
        """Take the app if no live server holds it; True if this server holds it now."""

    def scan(self) -> Claims:
        """Take every app with work (an active or unfinished deployment) that no live server holds,
        and say which held apps were lost (the ownership session itself ended)."""

    def release(self, app_id: str) -> None:
        """The app was deleted: stop holding it."""

    def close(self) -> None:
        """Stop holding everything (shoal stopping, after it stopped what it runs)."""


class DeploymentQueue(Protocol):
    """How use cases hand work to the deployer (callable from any thread)."""

    def submit(self, app_id: str, deployment_id: str) -> None: ...

    def cancel(self, app_id: str, deployment_id: str) -> None: ...

    def remove(self, app_id: str) -> None: ...


class NullQueue:
    """The deployer's null twin: for tools that write state without running deployments."""

    def submit(self, app_id: str, deployment_id: str) -> None:
        return None

    def cancel(self, app_id: str, deployment_id: str) -> None:
        return None

    def remove(self, app_id: str) -> None:
        return None


class JobStore(Protocol):
    def save_invocation(self, inv: JobInvocation) -> None: ...

    def get_invocation(self, app_id: str, invocation_id: str) -> JobInvocation | None: ...

    def list_invocations(self, app_id: str, offset: int, limit: int, deployment_id: str | None = None,
                         job_names: list[str] | None = None) -> tuple[list[JobInvocation], int]: ...


class TrafficStore(Protocol):
    """Daily traffic counters, fed by flushing the ingress's ``TrafficMeter``."""

    def add_traffic(self, counts: TrafficCounts) -> None: ...

    def bytes_out(self, app_ids: list[str], day: date) -> dict[str, int]: ...

    def component_traffic(self, app_id: str, day: date) -> dict[str, ComponentTraffic]: ...


class RoutePublisher(Protocol):
    """The ingress's route table, as the runtime sees it."""

    def publish(self, app_id: str, hosts: list[str], routes: list[Route], backends: dict[str, Backend],
                offline_page: str | None = None, min_tls: dict[str, str] | None = None,
                error_page: str | None = None, secure: SecureHeaders | None = None) -> None: ...

    def withdraw(self, app_id: str) -> None: ...


class DeliveryFailed(Unavailable):
    """An adapter could not hand something to an outside receiver (a log destination, a mail server,
    a webhook). ``permanent``: the receiver refused it for good (a bad key, an unknown hook), so
    retrying the same thing will not help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class LogForwarder(Protocol):
    """Ships forwarded log lines to their destinations, each on its own wire protocol.

    ``forward`` never blocks and never grows without bound: each destination keeps at most a fixed
    number of lines while it retries, dropping the oldest; ``dropped`` reports (and resets) what was
    dropped since it was last asked. ``run`` owns the senders until ``stop``, then gives what is
    queued a short grace to go out."""

    def forward(self, destination: Destination, records: list[Record]) -> None: ...

    def dropped(self) -> list[Dropped]: ...

    async def run(self, stop: asyncio.Event) -> None: ...


class Notifier(Protocol):
    """Delivers alert messages; each method raises ``DeliveryFailed``."""

    @property
    def mail_configured(self) -> bool:
        """Whether an SMTP server was given (``--smtp-url``); without one, email is undeliverable."""

    async def email(self, to: str, subject: str, text: str) -> None: ...

    async def slack(self, url: str, channel: str, text: str) -> None: ...

    async def close(self) -> None: ...


class AlertStore(Protocol):
    """Alerts' destinations (as assigned through the API), their firings and the firings' deliveries;
    ``record_firing`` is insert-once by the firing's id."""

    def alert_destinations(self, app_id: str) -> dict[str, tuple[list[str], list[dict[str, str]]]]: ...

    def set_alert_destinations(self, alert_id: str, app_id: str, component: str, rule: str, spec: dict[str, Any],
                               emails: list[str], slack_webhooks: list[dict[str, str]]) -> None: ...

    def record_firing(self, firing: Firing) -> bool: ...

    def save_firing(self, firing: Firing) -> None: ...

    def due_firings(self, now: datetime, limit: int = 100) -> list[Firing]: ...

    def take_due(self, now: datetime, lease_until: datetime, limit: int = 100) -> list[Firing]: ...

    def latest_firings(self, app_id: str) -> dict[str, Firing]: ...

    def recent_deployment_ids(self, since: datetime, app_id: str) -> list[str]:
        """Ids of the app's deployments whose phase changed at ``since`` or later."""

    def recent_deployments(self, since: datetime, app_id: str | None = None) -> list[Deployment]:
        """Deployments whose phase changed at ``since`` or later (of one app, or of all)."""


class ScaleEventStore(Protocol):
    """AUTOSCALING events of apps (the events API lists them beside the deployments)."""

    def add_scale_event(self, event: ScaleEvent) -> None: ...

    def scale_events(self, app_id: str) -> list[ScaleEvent]: ...


class SourceDetector(Protocol):
    """What a source would be built as (``POST /v2/apps/detect``): fetched as a deployment fetches it,
    under the same source policy, and looked at; nothing of it is kept."""

    async def detect(self, account_id: str, request: DetectRequest) -> Detected: ...
