"""Deployments of an app: list, create, get, cancel; restart; rollback validate / create / commit / revert."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoal.api.bodies import optional_bool, optional_str_list, read_object
from shoal.api.context import authorized, context
from shoal.api.pagination import links, page_request
from shoal.api.responses import render
from shoal.api.wire import deployment_wire


async def apps_list_deployments(request: Request) -> Response:
    principal = authorized(request, "app:read")
    ctx = context(request)
    paging = page_request(request.query_params)
    types = request.query_params.getlist("deployment_types")
    deps, total = await run_in_threadpool(ctx.deployments.list_deployments, principal.account,
                                          request.path_params["app_id"], paging.page, paging.per_page, types)
    return render(request, {"deployments": [deployment_wire(d) for d in deps],
                            "links": links(request.url, paging, total), "meta": {"total": total}})


async def apps_create_deployment(request: Request) -> Response:
    principal = authorized(request, "app:update")
    ctx = context(request)
    body = await read_object(request, ctx.max_body_bytes, allowed={"force_build"}, required=set(),
                             optional_body=True)
    dep = await run_in_threadpool(ctx.deployments.create_deployment, principal.account,
                                  request.path_params["app_id"], optional_bool(body, "force_build"))
    return render(request, {"deployment": deployment_wire(dep)})


async def apps_get_deployment(request: Request) -> Response:
    principal = authorized(request, "app:read")
    dep = await run_in_threadpool(context(request).deployments.get_deployment, principal.account,
                                  request.path_params["app_id"], request.path_params["deployment_id"])
    return render(request, {"deployment": deployment_wire(dep)})


async def apps_cancel_deployment(request: Request) -> Response:
    principal = authorized(request, "app:update")
    dep = await run_in_threadpool(context(request).deployments.cancel_deployment, principal.account,
                                  request.path_params["app_id"], request.path_params["deployment_id"])
    return render(request, {"deployment": deployment_wire(dep)})


async def apps_restart(request: Request) -> Response:
    principal = authorized(request, "app:update")
    ctx = context(request)
    body = await read_object(request, ctx.max_body_bytes, allowed={"components"}, required=set(), optional_body=True)
    dep = await run_in_threadpool(ctx.deployments.restart, principal.account, request.path_params["app_id"],
                                  optional_str_list(body, "components"))
    return render(request, {"deployment": deployment_wire(dep)})


async def _rollback_body(request: Request) -> tuple[object, bool]:
    body = await read_object(request, context(request).max_body_bytes, allowed={"deployment_id", "skip_pin"},
                             required={"deployment_id"})
    return body["deployment_id"], optional_bool(body, "skip_pin")


async def apps_validate_rollback(request: Request) -> Response:
    principal = authorized(request, "app:read")
    deployment_id, skip_pin = await _rollback_body(request)
    checked = await run_in_threadpool(context(request).deployments.validate_rollback, principal.account,
                                      request.path_params["app_id"], deployment_id, skip_pin)
    wire: dict[str, object] = {"valid": checked.valid}
    if checked.error:
        wire["error"] = checked.error
    if checked.warnings:
        wire["warnings"] = checked.warnings
    return render(request, wire)


async def apps_create_rollback(request: Request) -> Response:
    principal = authorized(request, "app:update")
    deployment_id, skip_pin = await _rollback_body(request)
    dep = await run_in_threadpool(context(request).deployments.create_rollback, principal.account,
                                  request.path_params["app_id"], deployment_id, skip_pin)
    return render(request, {"deployment": deployment_wire(dep)})


async def apps_commit_rollback(request: Request) -> Response:
    principal = authorized(request, "app:update")
    await run_in_threadpool(context(request).deployments.commit_rollback, principal.account,
                            request.path_params["app_id"])
    return Response(status_code=200)  # DigitalOcean answers 200 with an empty body


async def apps_revert_rollback(request: Request) -> Response:
    principal = authorized(request, "app:update")
    dep = await run_in_threadpool(context(request).deployments.revert_rollback, principal.account,
                                  request.path_params["app_id"])
    return render(request, {"deployment": deployment_wire(dep)})


routes = [
    Route("/v2/apps/{app_id}/deployments", apps_list_deployments, methods=["GET"]),
    Route("/v2/apps/{app_id}/deployments", apps_create_deployment, methods=["POST"]),
    Route("/v2/apps/{app_id}/deployments/{deployment_id}", apps_get_deployment, methods=["GET"]),
    Route("/v2/apps/{app_id}/deployments/{deployment_id}/cancel", apps_cancel_deployment, methods=["POST"]),
    Route("/v2/apps/{app_id}/restart", apps_restart, methods=["POST"]),
    Route("/v2/apps/{app_id}/rollback", apps_create_rollback, methods=["POST"]),
    Route("/v2/apps/{app_id}/rollback/validate", apps_validate_rollback, methods=["POST"]),
    Route("/v2/apps/{app_id}/rollback/commit", apps_commit_rollback, methods=["POST"]),
    Route("/v2/apps/{app_id}/rollback/revert", apps_revert_rollback, methods=["POST"]),
]
