"""What route handlers need, built once by ``shoal.bootstrap`` and hung on the Starlette app."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.websockets import WebSocket

from shoal.api.guard import principal_of
from shoal.api.wire import IngressAddress
from shoal.domain.accounts import Principal
from shoal.domain.ports import SourceDetector
from shoal.engine.accounts import AccountsService
from shoal.engine.apps import AppsService
from shoal.engine.buildpacks import BuildpacksService
from shoal.engine.console import ConsoleService
from shoal.engine.databases import DatabasesService
from shoal.core.signing import Signer
from shoal.engine.deployments import DeploymentsService
from shoal.engine.events import EventsService
from shoal.engine.insights import InsightsService
from shoal.engine.logs import LogsService


@dataclass(frozen=True)
class ApiContext:
    apps: AppsService
    deployments: DeploymentsService
    accounts: AccountsService
    logs: LogsService
    events: EventsService
    insights: InsightsService
    signer: Signer
    ingress: IngressAddress
    max_body_bytes: int
    console: ConsoleService
    buildpacks: BuildpacksService
    console_idle_seconds: float
    databases: DatabasesService
    app_bodies: dict[tuple[str, bool], tuple[int, bytes]] = field(default_factory=dict)  # encoded, by revision
    detector: SourceDetector | None = None  # POST /v2/apps/detect


def context(request: Request | WebSocket) -> ApiContext:
    return request.app.state.shoal  # type: ignore[no-any-return]


def authorized(request: Request, scope: str) -> Principal:
    """The caller, after checking its token carries ``scope`` (403 otherwise)."""
    principal = principal_of(request.scope)
    principal.require(scope)
    return principal
