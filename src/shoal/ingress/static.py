"""Static sites: the file a path names in a built site, with the site's index, catch-all and error
documents, served by Starlette's ``FileResponse`` (ranges, ETags, HEAD) through a small ASGI
bridge to the ingress's own connection.

Role: choose the file and run the response. It must not parse requests or pick routes.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import Message

from shoal.ingress.dispatch import Headers
from shoal.ingress.table import StaticSite


def static_response(site: StaticSite, path: str) -> Response:
    """The answer for ``path``: every file served, documents included, is checked by its real path
    (symlinks resolved) to lie inside the site's root, so nothing outside the build is ever read."""
    root = os.path.realpath(site.root)
    if root != os.path.abspath(site.root):
        return _missing(path)  # the site itself was swapped for a link after it was built
    found = _inside(root, path.lstrip("/"))
    if found is not None and os.path.isdir(found):
        found = _inside(root, os.path.join(found, site.index_document))
    if found is not None and os.path.isfile(found):
        return FileResponse(found)
    catchall = _inside(root, site.catchall_document) if site.catchall_document else None
    if catchall is not None and os.path.isfile(catchall):
        return FileResponse(catchall)
    error = _inside(root, site.error_document or "404.html")
    if error is not None and os.path.isfile(error):
        return FileResponse(error, status_code=404)
    return _missing(path)


def _inside(root: str, name: str) -> str | None:
    """The real path of ``name`` under ``root`` if it stays inside ``root``, else ``None``."""
    if "\x00" in name:
        return None
    real = os.path.realpath(os.path.join(root, name))
    return real if real == root or real.startswith(root + os.sep) else None


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
