"""The API application: Starlette routes wrapped in the guard, errors in DigitalOcean's shape."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Scope

from shoal.api.context import ApiContext
from shoal.api.errors import error_body
from shoal.api.guard import REQUEST_ID_KEY, ApiGuard
from shoal.api.ratelimit import RateLimiter
from shoal.api.responses import json_response
from shoal.api.routes import (account, apps, buildpacks, catalog, console, databases, deployments, events, insights,
                              logs, monitoring)
from shoal.api.routes import detect
from shoal.core.errors import ShoalError


def all_routes() -> list[BaseRoute]:
    # The catalogue's fixed paths come before ``/v2/apps/{id}`` so ``regions`` is never taken for an id.
    return [*catalog.routes, *buildpacks.routes, *insights.routes, *apps.routes, *deployments.routes, *events.routes, *logs.routes,
            *console.routes, *account.routes, *monitoring.routes, *databases.routes, *detect.routes]


async def _error(request: Request, exc: Exception) -> Response:
    status, body, headers = error_body(exc, request.scope.get(REQUEST_ID_KEY, ""))
    if status == 405:
        # Several routes share a path template (one per method): name every method it has.
        headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
        headers["allow"] = ", ".join(sorted(_allowed(request.app.routes, request.scope)))
    return json_response(body, status, headers)


def _allowed(routes: list[BaseRoute], scope: Scope) -> set[str]:
    """Methods of the path template that routing picked (``/v2/apps/regions``, not ``/v2/apps/{id}``)."""
    matching = [r for r in routes if isinstance(r, Route) and r.matches(scope)[0] != Match.NONE]
    if not matching:
        return set()
    return {m for r in matching if r.path == matching[0].path for m in (r.methods or set())}


def build_api(ctx: ApiContext, limiter: RateLimiter) -> ASGIApp:
    app = Starlette(routes=all_routes(),
                    exception_handlers={ShoalError: _error, HTTPException: _error, Exception: _error})
    app.router.redirect_slashes = False
    app.state.shoal = ctx
    return ApiGuard(app, ctx.accounts.authenticate, limiter,
                    is_public=lambda path: path.startswith((logs.PUBLIC_PREFIX, console.PUBLIC_PREFIX)),
                    recall=ctx.accounts.recently_authenticated)
