"""Events and job invocations of an app."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoal.api.context import authorized, context
from shoal.api.pagination import links, page_request
from shoal.api.responses import render
from shoal.api.wire import deployment_wire
from shoal.core.clock import rfc3339
from shoal.domain.jobs import JobInvocation
from shoal.engine.events import Event


def event_wire(event: Event) -> dict[str, Any]:
    dep = event.deployment
    if event.autoscaling is not None:
        return {"id": event.id, "type": "AUTOSCALING", "created_at": rfc3339(event.autoscaling.created_at),
                "deployment_id": dep.id, "autoscaling": event.autoscaling.wire()}
    return {"id": event.id, "type": "DEPLOYMENT", "created_at": rfc3339(dep.created_at), "deployment_id": dep.id,
            "deployment": deployment_wire(dep)}


def invocation_wire(inv: JobInvocation) -> dict[str, Any]:
    wire: dict[str, Any] = {"id": inv.id, "job_name": inv.job_name, "deployment_id": inv.deployment_id,
                            "phase": inv.phase, "trigger": inv.trigger, "created_at": rfc3339(inv.created_at)}
    if inv.started_at:
        wire["started_at"] = rfc3339(inv.started_at)
    if inv.completed_at:
        wire["completed_at"] = rfc3339(inv.completed_at)
    return wire


async def apps_list_events(request: Request) -> Response:
    principal = authorized(request, "app:read")
    paging = page_request(request.query_params)
    events, total = await run_in_threadpool(context(request).events.list_events, principal.account,
                                            request.path_params["app_id"], paging.page, paging.per_page,
                                            request.query_params.getlist("event_types"))
    return render(request, {"events": [event_wire(e) for e in events], "links": links(request.url, paging, total),
                            "meta": {"total": total}})


async def apps_get_event(request: Request) -> Response:
    principal = authorized(request, "app:read")
    event = await run_in_threadpool(context(request).events.get_event, principal.account,
                                    request.path_params["app_id"], request.path_params["event_id"])
    return render(request, {"event": event_wire(event)})


async def apps_cancel_event(request: Request) -> Response:
    principal = authorized(request, "app:update")
    event = await run_in_threadpool(context(request).events.cancel_event, principal.account,
                                    request.path_params["app_id"], request.path_params["event_id"])
    return render(request, {"event": event_wire(event)})


async def apps_list_job_invocations(request: Request) -> Response:
    principal = authorized(request, "app:read")
    paging = page_request(request.query_params)
    found, total = await run_in_threadpool(
        context(request).events.list_job_invocations, principal.account, request.path_params["app_id"],
        paging.page, paging.per_page, request.query_params.get("deployment_id"),
        request.query_params.getlist("job_names"))
    return render(request, {"job_invocations": [invocation_wire(i) for i in found],
                            "links": links(request.url, paging, total), "meta": {"total": total}})


async def apps_get_job_invocation(request: Request) -> Response:
    principal = authorized(request, "app:read")
    found = await run_in_threadpool(context(request).events.get_job_invocation, principal.account,
                                    request.path_params["app_id"], request.path_params["job_invocation_id"],
                                    request.query_params.get("job_name"))
    return render(request, {"job_invocation": invocation_wire(found)})


async def apps_cancel_job_invocation(request: Request) -> Response:
    principal = authorized(request, "app:update")
    found = await run_in_threadpool(context(request).events.cancel_job_invocation, principal.account,
                                    request.path_params["app_id"], request.path_params["job_invocation_id"],
                                    request.query_params.get("job_name"))
    return render(request, {"job_invocation": invocation_wire(found)})


routes = [
    Route("/v2/apps/{app_id}/events", apps_list_events, methods=["GET"]),
    Route("/v2/apps/{app_id}/events/{event_id}", apps_get_event, methods=["GET"]),
    Route("/v2/apps/{app_id}/events/{event_id}/cancel", apps_cancel_event, methods=["POST"]),
    Route("/v2/apps/{app_id}/job-invocations", apps_list_job_invocations, methods=["GET"]),
    Route("/v2/apps/{app_id}/job-invocations/{job_invocation_id}", apps_get_job_invocation, methods=["GET"]),
    Route("/v2/apps/{app_id}/job-invocations/{job_invocation_id}/cancel", apps_cancel_job_invocation,
          methods=["POST"]),
]
