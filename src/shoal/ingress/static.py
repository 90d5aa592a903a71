"""Static sites: the file a path names in a built site, with the site's index, catch-all and error
documents, served by Starlette's ``FileResponse`` (ranges, ETags, HEAD) through a small ASGI
bridge to the ingress's own connection.

Role: choose the file and run the response. It must not parse requests or pick routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import Message

from shoal.ingress.dispatch import Headers
from shoal.ingress.table import StaticSite


def static_response(site: StaticSite, path: str) -> Response:
    root = site.root.resolve()
    candidate = (root / path.lstrip("/")).resolve()
    if root != candidate and root not in candidate.parents:
        return _missing(path)
    if candidate.is_dir():
        candidate = candidate / site.index_document
    if candidate.is_file():
        return FileResponse(candidate)
    if site.catchall_document and (root / site.catchall_document).is_file():
        return FileResponse(root / site.catchall_document)
    error = root / (site.error_document or "404.html")
    if error.is_file():
        return FileResponse(error, status_code=404)
    return _missing(path)


def _missing(path: str) -> Response:
    return HTMLResponse(f"<!doctype html><title>404 Not Found</title><h1>Not Found</h1><p>{path!r} is not part "
                        "of this site.</p>\n", status_code=404)


class Sink:
    """Where a static response goes: the exchange's head/body/done writers and a drain."""

    def __init__(self, head: Callable[[int, Headers], None], body: Callable[[bytes], None],
                 done: Callable[[], None], drain: Callable[[], Awaitable[None]]) -> None:
        self.head, self.body, self.done, self.drain = head, body, done, drain


async def serve_static(site: StaticSite, path: str, method: str, headers: Headers, sink: Sink) -> None:
    """Run the site's response for ``path`` into ``sink``."""
    scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "headers": headers,
                             "http_version": "1.1", "asgi": {"version": "3.0", "spec_version": "2.4"}}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            sink.head(int(message["status"]), list(message.get("headers", [])))
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            if body:
                sink.body(body)
                await sink.drain()
            if not message.get("more_body", False):
                sink.done()

    await static_response(site, path)(scope, receive, send)
