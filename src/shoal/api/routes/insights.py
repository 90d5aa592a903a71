"""Instances, health, alerts and bandwidth metrics of apps."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoal.api.bodies import optional_str_list, read_object
from shoal.api.context import authorized, context
from shoal.api.responses import render
from shoal.core.errors import BadRequest


async def apps_get_instances(request: Request) -> Response:
    principal = authorized(request, "app:read")
    found = await run_in_threadpool(context(request).insights.instances, principal.account,
                                    request.path_params["app_id"])
    return render(request, {"instances": found})


async def apps_get_health(request: Request) -> Response:
    principal = authorized(request, "app:read")
    health = await run_in_threadpool(context(request).insights.health, principal.account,
                                     request.path_params["app_id"])
    return render(request, {"app_health": health})


async def apps_list_alerts(request: Request) -> Response:
    principal = authorized(request, "app:read")
    found = await run_in_threadpool(context(request).insights.alerts, principal.account,
                                    request.path_params["app_id"])
    return render(request, {"alerts": found})


async def apps_assign_alert_destinations(request: Request) -> Response:
    principal = authorized(request, "app:update")
    ctx = context(request)
    body = await read_object(request, ctx.max_body_bytes, allowed={"emails", "slack_webhooks"}, required=set())
    hooks = body.get("slack_webhooks") or []
    if not isinstance(hooks, list) or not all(isinstance(h, dict) and set(h) <= {"url", "channel"}
                                              and all(isinstance(v, str) for v in h.values()) for h in hooks):
        raise BadRequest("error parsing request body: 'slack_webhooks' must be an array of {url, channel} objects")
    alert = await run_in_threadpool(ctx.insights.assign_alert_destinations, principal.account,
                                    request.path_params["app_id"], request.path_params["alert_id"],
                                    optional_str_list(body, "emails"), hooks)
    return render(request, {"alert": alert})


async def apps_get_metrics_bandwidth_daily(request: Request) -> Response:
    principal = authorized(request, "app:read")
    usage = await run_in_threadpool(context(request).insights.bandwidth, principal.account,
                                    [request.path_params["app_id"]], request.query_params.get("date"))
    return render(request, usage)


async def apps_list_metrics_bandwidth_daily(request: Request) -> Response:
    principal = authorized(request, "app:read")
    ctx = context(request)
    body = await read_object(request, ctx.max_body_bytes, allowed={"app_ids", "date"}, required={"app_ids"})
    day = body.get("date")
    if day is not None and not isinstance(day, str):
        raise BadRequest("error parsing request body: 'date' must be an RFC 3339 string")
    usage = await run_in_threadpool(ctx.insights.bandwidth, principal.account, optional_str_list(body, "app_ids"),
                                    day)
    return render(request, usage)


routes = [
    Route("/v2/apps/metrics/bandwidth_daily", apps_list_metrics_bandwidth_daily, methods=["POST"]),
    Route("/v2/apps/{app_id}/instances", apps_get_instances, methods=["GET"]),
    Route("/v2/apps/{app_id}/health", apps_get_health, methods=["GET"]),
    Route("/v2/apps/{app_id}/alerts", apps_list_alerts, methods=["GET"]),
    Route("/v2/apps/{app_id}/alerts/{alert_id}/destinations", apps_assign_alert_destinations, methods=["POST"]),
    Route("/v2/apps/{app_id}/metrics/bandwidth_daily", apps_get_metrics_bandwidth_daily, methods=["GET"]),
]
