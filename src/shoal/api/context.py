"""What route handlers need, built once by ``shoal.bootstrap`` and hung on the Starlette app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from shoal.api.guard import principal_of
from shoal.api.wire import IngressAddress
from shoal.domain.accounts import Principal
from shoal.engine.accounts import AccountsService
from shoal.engine.apps import AppsService
from shoal.engine.deployments import DeploymentsService


@dataclass(frozen=True)
class ApiContext:
    apps: AppsService
    deployments: DeploymentsService
    accounts: AccountsService
    ingress: IngressAddress
    max_body_bytes: int


def context(request: Request) -> ApiContext:
    return request.app.state.shoal  # type: ignore[no-any-return]


def authorized(request: Request, scope: str) -> Principal:
    """The caller, after checking its token carries ``scope`` (403 otherwise)."""
    principal = principal_of(request.scope)
    principal.require(scope)
    return principal
