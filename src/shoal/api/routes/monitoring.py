"""The Monitoring API's app metrics (do-app-platform.md §1.4): CPU, memory and restarts per instance.

``GET /v2/monitoring/metrics/apps/{cpu_percentage|memory_percentage|restart_count}?app_id=&start=&end=
[&app_component=]`` answers a Prometheus-style matrix, scope ``monitoring:read``.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoal.api.context import authorized, context
from shoal.api.responses import render
from shoal.core.errors import BadRequest

METRICS = ("cpu_percentage", "memory_percentage", "restart_count")


def _seconds(request: Request, name: str) -> float:
    value = request.query_params.get(name)
    if value is None or value == "":
        raise BadRequest(f"{name} is required: a UNIX timestamp in seconds")
    try:
        return float(value)
    except ValueError as exc:
        raise BadRequest(f"{name} {value!r} is not a UNIX timestamp in seconds") from exc


async def monitoring_get_app_metrics(request: Request) -> Response:
    principal = authorized(request, "monitoring:read")
    app_id = request.query_params.get("app_id")
    if not app_id:
        raise BadRequest("app_id is required")
    start, end = _seconds(request, "start"), _seconds(request, "end")
    answer = await run_in_threadpool(context(request).insights.app_metrics, principal.account, app_id,
                                     request.query_params.get("app_component") or None,
                                     request.url.path.rsplit("/", 1)[1], start, end)
    return render(request, answer)


routes = [Route(f"/v2/monitoring/metrics/apps/{metric}", monitoring_get_app_metrics, methods=["GET"], name=metric)
          for metric in METRICS]
