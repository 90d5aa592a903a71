"""``/v2/apps``: list, create, get (by id or name), update, delete, propose."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoal.api.bodies import optional_bool, read_object
from shoal.api.context import ApiContext, authorized, context
from shoal.api.pagination import bool_param, links, page_request
from shoal.api.responses import encode, json_body, render, wants_yaml
from shoal.api.wire import app_wire
from shoal.core.errors import BadRequest
from shoal.domain.apps import AppView
from shoal.engine.apps import Proposal


async def apps_list(request: Request) -> Response:
    principal = authorized(request, "app:read")
    ctx = context(request)
    paging = page_request(request.query_params)
    views, total = await run_in_threadpool(ctx.apps.list_apps, principal.account, paging.page, paging.per_page)
    with_projects = bool_param(request.query_params, "with_projects")
    if wants_yaml(request.headers.get("accept", "")):
        return render(request, {
            "apps": [app_wire(v, ctx.ingress, with_project=with_projects) for v in views],
            "links": links(request.url, paging, total),
            "meta": {"total": total},
        })
    # Pages are joined from each app's cached encoding: a page of 200 apps is over a megabyte.
    apps = b",".join(encoded_app(v, ctx, with_projects) for v in views)
    rest = encode({"links": links(request.url, paging, total), "meta": {"total": total}})
    return json_body(b'{"apps":[' + apps + b"]," + rest[1:])


async def apps_create(request: Request) -> Response:
    principal = authorized(request, "app:create")
    ctx = context(request)
    body = await read_object(request, ctx.max_body_bytes, allowed={"spec", "project_id"}, required={"spec"})
    app = await run_in_threadpool(ctx.apps.create_app, principal.account, body["spec"], body.get("project_id"))
    return render(request, {"app": app_wire(app, ctx.ingress)})


async def apps_get(request: Request) -> Response:
    principal = authorized(request, "app:read")
    ctx = context(request)
    name = request.query_params.get("name")
    app_id = request.path_params.get("id", "")
    if name:
        app = await run_in_threadpool(ctx.apps.get_app_by_name, principal.account, name)
    elif not app_id:
        return await apps_list(request)
    else:
        view = ctx.apps.cached_view(principal.account, app_id)  # the common case: no I/O, no thread
        if view is None:
            view = await run_in_threadpool(ctx.apps.get_app_view, principal.account, app_id)
        if not wants_yaml(request.headers.get("accept", "")):
            return json_body(cached_body(view, ctx))
        app = view
    return render(request, {"app": app_wire(app, ctx.ingress)})


def encoded_app(view: AppView, ctx: ApiContext, with_project: bool = True) -> bytes:
    """A view's app object, encoded once per revision (and project flag)."""
    key = (view.app.id, with_project)
    found = ctx.app_bodies.get(key)
    if found is not None and found[0] == view.app.revision:
        return found[1]
    body = encode(app_wire(view, ctx.ingress, with_project=with_project))
    if len(ctx.app_bodies) > 40_000:
        ctx.app_bodies.clear()
    ctx.app_bodies[key] = (view.app.revision, body)
    return body


def cached_body(view: AppView, ctx: ApiContext) -> bytes:
    return b'{"app":' + encoded_app(view, ctx) + b"}"


async def apps_update(request: Request) -> Response:
    principal = authorized(request, "app:update")
    ctx = context(request)
    body = await read_object(request, ctx.max_body_bytes, allowed={"spec", "update_all_source_versions"},
                             required={"spec"})
    app = await run_in_threadpool(ctx.apps.update_app, principal.account, request.path_params["id"], body["spec"],
                                  optional_bool(body, "update_all_source_versions"))
    return render(request, {"app": app_wire(app, ctx.ingress)})


async def apps_delete(request: Request) -> Response:
    principal = authorized(request, "app:delete")
    app_id = request.path_params["id"]
    await run_in_threadpool(context(request).apps.delete_app, principal.account, app_id)
    return render(request, {"id": app_id})


async def apps_validate_app_spec(request: Request) -> Response:
    principal = authorized(request, "app:read")
    ctx = context(request)
    body = await read_object(request, ctx.max_body_bytes, allowed={"spec", "app_id"}, required={"spec"})
    if body.get("app_id") is not None and not isinstance(body["app_id"], str):
        raise BadRequest("error parsing request body: field 'app_id' must be a string")
    proposal = await run_in_threadpool(ctx.apps.propose, principal.account, body["spec"], body.get("app_id"))
    return render(request, proposal_wire(proposal))


def proposal_wire(proposal: Proposal) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "app_name_available": proposal.app_name_available,
        "app_is_static": proposal.app_is_static,
        "app_is_starter": proposal.app_is_static,
        "existing_static_apps": str(proposal.existing_static_apps),
        "existing_starter_apps": str(proposal.existing_static_apps),
        "max_free_static_apps": "3",
        "max_free_starter_apps": "3",
        "spec": proposal.spec,
        "app_cost": proposal.app_cost,
    }
    if proposal.app_name_suggestion:
        wire["app_name_suggestion"] = proposal.app_name_suggestion
    if proposal.warnings:
        wire["warnings"] = proposal.warnings  # shoal's addition: what will run differently than asked
    return wire


routes = [
    Route("/v2/apps", apps_list, methods=["GET"]),
    Route("/v2/apps", apps_create, methods=["POST"]),
    Route("/v2/apps/propose", apps_validate_app_spec, methods=["POST"]),
    # pydo sends ``GET /v2/apps/?name=NAME`` for a lookup by name (empty id).
    Route("/v2/apps/", apps_get, methods=["GET"]),
    Route("/v2/apps/{id}", apps_get, methods=["GET"]),
    Route("/v2/apps/{id}", apps_update, methods=["PUT"]),
    Route("/v2/apps/{id}", apps_delete, methods=["DELETE"]),
]
