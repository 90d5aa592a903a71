"""Websocket pass-through: the ingress accepts the client's websocket, opens one to the chosen
instance with ``websockets``, and pumps text and binary frames both ways until either side closes.

Role: relay one connection. It must not pick the route or the instance (the proxy does), and it
holds at most one frame per direction in memory.

The upstream handshake happens first, so the client is accepted with the subprotocol the
instance chose; an instance that refuses the handshake gets the client closed with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

MAX_FRAME = 16 * 1024 * 1024  # uvicorn's default ws_max_size: the client side cannot send more either
# Codes a close frame may not carry (RFC 6455 §7.4.1): what each means, as a code that can be sent.
_UNSENDABLE = {1005: 1000, 1006: 1011, 1015: 1011}
# The websocket library writes its own handshake headers; the client's would be duplicates.
_HANDSHAKE = (b"sec-websocket-", b"host", b"upgrade", b"connection")


def _sendable(code: int | None) -> int:
    return _UNSENDABLE.get(code or 1005, code or 1000)


async def proxy_websocket(scope: Scope, receive: Receive, send: Send, upstream_url: str,
                          headers: list[tuple[bytes, bytes]]) -> None:
    """Relay the websocket ``scope`` to ``upstream_url`` (``ws://host:port/path?query``)."""
    connected = await receive()
    if connected["type"] != "websocket.connect":
        return  # the client left before the handshake
    forwarded = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers
                 if not k.lower().startswith(_HANDSHAKE)]
    offered = [Subprotocol(p) for p in scope.get("subprotocols") or []]
    try:
        upstream = await connect(upstream_url, subprotocols=offered or None, additional_headers=forwarded,
                                 user_agent_header=None, proxy=None, compression=None, open_timeout=5,
                                 max_size=MAX_FRAME)
    except (OSError, WebSocketException, TimeoutError):
        await send({"type": "websocket.close", "code": 1011})
        return
    async with upstream:
        await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
        to_upstream = asyncio.ensure_future(_client_to_upstream(receive, upstream))
        to_client = asyncio.ensure_future(_upstream_to_client(upstream, send))
        try:
            await asyncio.wait([to_upstream, to_client], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (to_upstream, to_client):
                task.cancel()
            await asyncio.gather(to_upstream, to_client, return_exceptions=True)


async def _client_to_upstream(receive: Receive, upstream: ClientConnection) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            with contextlib.suppress(ConnectionClosed):
                await upstream.close(_sendable(message.get("code")), message.get("reason") or "")
            return
        if message["type"] != "websocket.receive":
            continue
        text = message.get("text")
        try:
            await upstream.send(text if text is not None else message.get("bytes") or b"")
        except ConnectionClosed:
            return  # the other pump sees the close and tells the client


async def _upstream_to_client(upstream: ClientConnection, send: Send) -> None:
    try:
        async for frame in upstream:
            if isinstance(frame, str):
                await send({"type": "websocket.send", "text": frame})
            else:
                await send({"type": "websocket.send", "bytes": frame})
    except ConnectionClosed:
        pass
    with contextlib.suppress(Exception):  # the client may already be gone
        await send({"type": "websocket.close", "code": _sendable(upstream.close_code),
                    "reason": upstream.close_reason or ""})
