"""Logs: the four DigitalOcean log endpoints (plus job and event logs) answer ``{live_url, historic_urls}``.

Both URLs carry a signed, expiring ``token`` instead of an auth header (clients append none):
``historic_urls[0]`` is a plain-text download of ``<component> <RFC3339 time> <line>`` lines;
``live_url`` is a websocket sending ``{"data": "..."}`` text frames (what ``doctl apps logs --follow``
speaks) and, fetched over plain HTTPS, the same lines as a streamed text response (for curl).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from shoal.api.context import authorized, context
from shoal.api.responses import render
from shoal.core.errors import BadRequest, ShoalError, Unauthorized
from shoal.engine.logs import LogSelection

LINK_TTL_SECONDS = 3600
POLL_SECONDS = 0.25


def _tail_lines(request: Request) -> int | None:
    raw = request.query_params.get("tail_lines")
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise BadRequest(f"query parameter 'tail_lines' must be an integer, got {raw!r}") from exc


_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def follow_param(request: Request) -> bool:
    """``follow`` as Go's ``strconv.ParseBool`` reads it (what DigitalOcean's API is written in)."""
    raw = request.query_params.get("follow")
    if raw is None:
        return False
    if raw.lower() not in _BOOLS:
        raise BadRequest(f"query parameter 'follow' must be true or false, got {raw!r}")
    return _BOOLS[raw.lower()]


def _urls(request: Request, selection: LogSelection) -> dict[str, Any]:
    payload: dict[str, Any] = {"a": selection.app_id, "d": selection.deployment_id, "s": sorted(selection.stages),
                               "c": selection.component, "t": selection.tail_lines}
    if selection.invocation_id is not None:
        payload.update(i=selection.invocation_id, f=_stamp(selection.since), u=_stamp(selection.until))
    token = context(request).signer.sign(payload, LINK_TTL_SECONDS)
    base = f"{request.url.scheme}://{request.url.netloc}"
    live_base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return {"live_url": f"{live_base}/v2/logs/live?token={token}" if selection.live else "",
            "historic_urls": [f"{base}/v2/logs/history?token={token}"]}


def _stamp(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _when(text: object) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


async def _answer(request: Request, deployment_id: str | None, component: str | None,
                  log_type: str | None = None) -> Response:
    principal = authorized(request, "app:read")
    ctx = context(request)
    selection = await run_in_threadpool(
        ctx.logs.select, principal.account, request.path_params["app_id"], deployment_id, component,
        log_type or request.query_params.get("type"), _tail_lines(request), follow_param(request))
    return render(request, _urls(request, selection))


async def apps_get_logs(request: Request) -> Response:
    return await _answer(request, request.path_params["deployment_id"], request.path_params["component_name"])


async def apps_get_logs_aggregate(request: Request) -> Response:
    return await _answer(request, request.path_params["deployment_id"], request.query_params.get("component_name"))


async def apps_get_logs_active_deployment(request: Request) -> Response:
    return await _answer(request, None, request.path_params["component_name"])


async def apps_get_logs_active_deployment_aggregate(request: Request) -> Response:
    return await _answer(request, None, request.query_params.get("component_name"))


async def apps_get_job_invocation_logs(request: Request) -> Response:
    principal = authorized(request, "app:read")
    ctx = context(request)
    invocation = await run_in_threadpool(ctx.events.get_job_invocation, principal.account,
                                         request.path_params["app_id"], request.path_params["job_invocation_id"],
                                         request.path_params["job_name"])
    selection = await run_in_threadpool(ctx.logs.select_invocation, principal.account, invocation,
                                        _tail_lines(request), follow_param(request))
    return render(request, _urls(request, selection))


async def apps_get_event_logs(request: Request) -> Response:
    principal = authorized(request, "app:read")
    ctx = context(request)
    event = await run_in_threadpool(ctx.events.get_event, principal.account, request.path_params["app_id"],
                                    request.path_params["event_id"])
    log_type = request.query_params.get("type")
    return await _answer(request, event.deployment.id, None, None if log_type == "AUTOSCALE_EVENT" else log_type)


def _selection(request: Request | WebSocket) -> LogSelection:
    payload = context(request).signer.verify(request.query_params.get("token", ""))
    if payload.get("p") is not None or "s" not in payload:  # another link's token (a console's)
        raise Unauthorized("this token is not a logs token")
    return LogSelection(app_id=payload["a"], deployment_id=payload["d"], stages=frozenset(payload["s"]),
                        component=payload.get("c"), tail_lines=payload.get("t"), live=True,
                        invocation_id=payload.get("i"), since=_when(payload.get("f")), until=_when(payload.get("u")))


async def logs_history(request: Request) -> Response:
    selection = _selection(request)
    lines = await run_in_threadpool(context(request).logs.read, selection)
    return PlainTextResponse("".join(line.render() + "\n" for _, line in lines))


async def _follow(request: Request | WebSocket, selection: LogSelection) -> AsyncIterator[str]:
    """Stored lines, then new ones as they are written, until the stage can grow no more."""
    logs = context(request).logs
    last = 0
    while True:
        open_before = await run_in_threadpool(logs.still_open, selection)
        lines = await run_in_threadpool(logs.read, selection, last)
        for line_id, line in lines:
            last = line_id
            yield line.render() + "\n"
        if not open_before:
            return
        await asyncio.sleep(POLL_SECONDS)


async def logs_live_http(request: Request) -> Response:
    selection = _selection(request)
    return StreamingResponse(_follow(request, selection), media_type="text/plain; charset=utf-8")


async def logs_live_websocket(websocket: WebSocket) -> None:
    try:
        selection = _selection(websocket)
    except ShoalError:
        await websocket.close(code=4401)
        return
    await websocket.accept()
    try:
        async for chunk in _follow(websocket, selection):
            await websocket.send_text(json.dumps({"data": chunk}))
        await websocket.close()
    except WebSocketDisconnect:
        return


routes = [
    Route("/v2/apps/{app_id}/deployments/{deployment_id}/components/{component_name}/logs", apps_get_logs,
          methods=["GET"]),
    Route("/v2/apps/{app_id}/deployments/{deployment_id}/logs", apps_get_logs_aggregate, methods=["GET"]),
    Route("/v2/apps/{app_id}/components/{component_name}/logs", apps_get_logs_active_deployment, methods=["GET"]),
    Route("/v2/apps/{app_id}/logs", apps_get_logs_active_deployment_aggregate, methods=["GET"]),
    Route("/v2/apps/{app_id}/jobs/{job_name}/invocations/{job_invocation_id}/logs", apps_get_job_invocation_logs,
          methods=["GET"]),
    Route("/v2/apps/{app_id}/events/{event_id}/logs", apps_get_event_logs, methods=["GET"]),
    Route("/v2/logs/history", logs_history, methods=["GET"]),
    Route("/v2/logs/live", logs_live_http, methods=["GET"]),
    WebSocketRoute("/v2/logs/live", logs_live_websocket),
]

PUBLIC_PREFIX = "/v2/logs/"
