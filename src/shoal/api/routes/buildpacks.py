"""godo-only buildpack routes: ``GET /v2/apps/buildpacks`` (doctl ``apps list-buildpacks``) and
``POST /v2/apps/{id}/upgrade_buildpack`` (doctl ``apps upgrade-buildpack``)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoal.api.bodies import read_object
from shoal.api.context import authorized, context
from shoal.api.responses import render
from shoal.api.wire import deployment_wire
from shoal.core.errors import BadRequest
from shoal.spec.buildpacks import BUILDPACKS

_LIST = {"buildpacks": [b.as_wire() for b in BUILDPACKS]}


async def apps_list_buildpacks(request: Request) -> Response:
    authorized(request, "app:read")
    return render(request, _LIST)


async def apps_upgrade_buildpack(request: Request) -> Response:
    principal = authorized(request, "app:update")
    ctx = context(request)
    body = await read_object(request, ctx.max_body_bytes, allowed={"buildpack_id", "major_version",
                                                                   "trigger_deployment"}, required={"buildpack_id"})
    trigger = body.get("trigger_deployment")
    if trigger is not None and not isinstance(trigger, bool):
        raise BadRequest("error parsing request body: field 'trigger_deployment' must be a boolean")
    done = await run_in_threadpool(ctx.buildpacks.upgrade, principal.account, request.path_params["app_id"],
                                   body["buildpack_id"], body.get("major_version"), trigger is not False)
    wire: dict[str, object] = {"affected_components": done.affected_components}
    if done.deployment is not None:
        wire["deployment"] = deployment_wire(done.deployment)
    return render(request, wire)


routes = [
    Route("/v2/apps/buildpacks", apps_list_buildpacks, methods=["GET"]),
    Route("/v2/apps/{app_id}/upgrade_buildpack", apps_upgrade_buildpack, methods=["POST"]),
]
