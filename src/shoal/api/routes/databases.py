"""godo-only database routes of an app: ``GET /v2/apps/{id}/database_connection_details``,
``POST /v2/apps/{id}/components/{name}/reset_password`` and ``.../trusted_sources``.

They hand out or change credentials, so a read-only token is not enough: ``app:update``, as for any
change to the app (a read token sees SECRET values only encrypted, and so sees no password here).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoal.api.bodies import read_object
from shoal.api.context import authorized, context
from shoal.api.responses import render
from shoal.api.wire import deployment_wire
from shoal.core.errors import BadRequest
from shoal.domain.ports import DatabaseConnection


def connection_wire(c: DatabaseConnection) -> dict[str, Any]:
    wire: dict[str, Any] = {"host": c.host, "port": c.port, "username": c.user, "password": c.password,
                            "database_name": c.database, "database_url": c.url, "component_name": c.component}
    if c.ssl_mode:
        wire["ssl_mode"] = c.ssl_mode
    return {k: v for k, v in wire.items() if v not in ("", None)}


async def apps_database_connection_details(request: Request) -> Response:
    principal = authorized(request, "app:update")
    found = await run_in_threadpool(context(request).databases.connection_details, principal.account,
                                    request.path_params["app_id"])
    return render(request, {"connection_details": [connection_wire(c) for c in found]})


async def apps_reset_database_password(request: Request) -> Response:
    principal = authorized(request, "app:update")
    ctx = context(request)
    # godo posts no body at all; DigitalOcean's request type also allows app_id and component_name.
    await read_object(request, ctx.max_body_bytes, allowed={"app_id", "component_name"}, required=set(),
                      optional_body=True)
    dep = await ctx.databases.reset_password(principal.account, request.path_params["app_id"],
                                             request.path_params["name"])
    return render(request, {"deployment": deployment_wire(dep)})


async def apps_toggle_database_trusted_source(request: Request) -> Response:
    principal = authorized(request, "app:update")
    ctx = context(request)
    # godo's options struct has no json tags, so it sends {"Enable": true}; the API's own field is "enable".
    body = await read_object(request, ctx.max_body_bytes, allowed={"enable", "Enable", "app_id", "component_name"},
                             required=set(), optional_body=True)
    enable = body.get("enable", body.get("Enable", False))
    if not isinstance(enable, bool):
        raise BadRequest("error parsing request body: field 'enable' must be a boolean")
    enabled = await run_in_threadpool(ctx.databases.trusted_sources, principal.account,
                                      request.path_params["app_id"], request.path_params["name"], enable)
    return render(request, {"is_enabled": enabled})


routes = [
    Route("/v2/apps/{app_id}/database_connection_details", apps_database_connection_details, methods=["GET"]),
    Route("/v2/apps/{app_id}/components/{name}/reset_password", apps_reset_database_password, methods=["POST"]),
    Route("/v2/apps/{app_id}/components/{name}/trusted_sources", apps_toggle_database_trusted_source,
          methods=["POST"]),
]
