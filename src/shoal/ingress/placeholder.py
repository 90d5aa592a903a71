"""The ingress listener before any app can be live: every host answers 404 with a clear page.

The runtime issue replaces this with the route table and proxy; the listener and its address
(which ``default_ingress`` points at) stay the same.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.responses import PlainTextResponse


def build_ingress() -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        response = PlainTextResponse(f"No app is live at {host or 'this address'} yet.\n", status_code=404)
        await response(scope, receive, send)

    return app
