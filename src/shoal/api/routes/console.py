"""The console: exec URLs (``apps_get_exec``, ``apps_get_exec_active_deployment``) and the websocket
they point at, speaking exactly what ``doctl apps console`` speaks (runtime reference §6).

The URL is ``wss://…/v2/console?token=…``: the token (signed, one minute to dial, one session) is
the only credential, since doctl dials with no header. Frames from doctl are JSON text:
``{"op":"stdin","data":"<one keystroke>"}`` (an empty ``data`` every 30 s as a keepalive) and
``{"op":"resize","width":W,"height":H}``. The server sends ``{"data":"<output>"}`` frames and a
normal closure (1000) when the shell ends; doctl treats any other ending as an error. A session
with neither keystrokes nor output for the idle timeout is closed.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from shoal.api.context import authorized, context
from shoal.api.responses import render
from shoal.core.errors import ShoalError, Unauthorized
from shoal.domain.ports import Console
from shoal.engine.console import TICKET_SECONDS, ConsoleTicket

PUBLIC_PREFIX = "/v2/console"
PURPOSE = "console"
NORMAL_CLOSURE = 1000
UNUSABLE = 1011  # could not open the shell: doctl prints the reason and exits non-zero


async def _exec_url(request: Request, deployment_id: str | None) -> Response:
    principal = authorized(request, "app:access_console")
    ctx = context(request)
    ticket = await run_in_threadpool(ctx.console.ticket, principal.account, request.path_params["app_id"],
                                     deployment_id, request.path_params["component_name"],
                                     request.query_params.get("instance_name") or None)
    token = ctx.signer.sign({"p": PURPOSE, "a": ticket.app_id, "d": ticket.deployment_id, "c": ticket.component,
                             "i": ticket.instance, "n": ticket.nonce}, TICKET_SECONDS)
    base = f"{request.url.scheme}://{request.url.netloc}".replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return render(request, {"url": f"{base}{PUBLIC_PREFIX}?token={token}"})


async def apps_get_exec(request: Request) -> Response:
    return await _exec_url(request, request.path_params["deployment_id"])


async def apps_get_exec_active_deployment(request: Request) -> Response:
    return await _exec_url(request, None)


def ticket_of(payload: dict[str, Any]) -> ConsoleTicket:
    if payload.get("p") != PURPOSE:
        raise Unauthorized("this token is not a console token")
    return ConsoleTicket(app_id=str(payload["a"]), deployment_id=str(payload["d"]), component=str(payload["c"]),
                         instance=str(payload["i"]), nonce=str(payload["n"]))


async def console_websocket(websocket: WebSocket) -> None:
    ctx = context(websocket)
    try:
        ticket = ticket_of(ctx.signer.verify(websocket.query_params.get("token", "")))
        ctx.console.redeem(ticket)
    except ShoalError:
        await websocket.close(code=4401)  # before accept: the dial fails with a 403
        return
    await websocket.accept()
    try:
        console = await ctx.console.open(ticket)
    except ShoalError as exc:
        await _say(websocket, f"shoal: {exc.message}\r\n")
        await websocket.close(code=UNUSABLE, reason=exc.message[:120])
        return
    await Session(websocket, console, ctx.console_idle_seconds).run()


async def _say(websocket: WebSocket, text: str) -> None:
    await websocket.send_text(json.dumps({"data": text}))


class Session:
    """One console session: keystrokes in, output out, until the shell ends, the client goes or
    nothing happens for ``idle_seconds``."""

    def __init__(self, websocket: WebSocket, console: Console, idle_seconds: float) -> None:
        self._ws = websocket
        self._console = console
        self._idle = idle_seconds
        self._active = asyncio.get_running_loop().time()

    def _touch(self) -> None:
        self._active = asyncio.get_running_loop().time()

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._output()), group.create_task(self._input()),
                         group.create_task(self._watch_idle())]
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    task.cancel()
            ending = next(iter(done)).result() if done else None
        except* Exception:  # noqa: BLE001 - the client went away (or the socket broke): just clean up
            ending = None
        finally:
            await self._console.close()
        if ending is not None:
            with contextlib.suppress(Exception):
                if ending:
                    await _say(self._ws, ending)
                await self._ws.close(code=NORMAL_CLOSURE)

    async def _output(self) -> str:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while data := await self._console.read():
            self._touch()
            await _say(self._ws, decoder.decode(data))
        return ""  # the shell ended: a normal closure, as doctl expects

    async def _input(self) -> str | None:
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return None
            raw = message.get("text") if message.get("text") is not None else message.get("bytes")
            self._handle(raw)

    def _handle(self, raw: str | bytes | None) -> None:
        try:
            frame = json.loads(raw or "")
        except ValueError:
            return  # not one of doctl's frames: ignored, like an unknown op
        if not isinstance(frame, dict):
            return
        if frame.get("op") == "stdin" and isinstance(frame.get("data"), str):
            if frame["data"]:  # an empty one is doctl's 30-second keepalive, not activity
                self._touch()
                self._console.write(frame["data"].encode("utf-8"))
        elif frame.get("op") == "resize":
            width, height = frame.get("width"), frame.get("height")
            if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
                self._console.resize(width, height)

    async def _watch_idle(self) -> str:
        loop = asyncio.get_running_loop()
        while True:
            left = self._active + self._idle - loop.time()
            if left <= 0:
                return f"\r\nshoal: console closed after {self._idle:g} s without activity\r\n"
            await asyncio.sleep(min(left, 5.0))


routes = [
    Route("/v2/apps/{app_id}/deployments/{deployment_id}/components/{component_name}/exec", apps_get_exec,
          methods=["GET"]),
    Route("/v2/apps/{app_id}/components/{component_name}/exec", apps_get_exec_active_deployment, methods=["GET"]),
    WebSocketRoute(PUBLIC_PREFIX, console_websocket),
]
