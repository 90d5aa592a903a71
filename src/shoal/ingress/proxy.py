"""The ingress proxy: every request to an app passes here — matched by Host and path, then
forwarded to a healthy instance, served from a static site's files, or redirected.

Bodies stream both ways (nothing is held in memory). A request whose connection to an instance
is refused is tried on the next instance: nothing was sent, so any method is safe to retry.
"""

from __future__ import annotations

import html
from urllib.parse import quote
from collections.abc import AsyncIterator

from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.types import Message, Receive, Scope, Send

from shoal.domain.routing import Redirect, Route
from shoal.ingress.cors import CorsPolicy, merge_headers, preflight, simple_headers
from shoal.ingress.table import RouteTable, StaticSite, Upstream
from shoal.ingress.upstream import UpstreamError, UpstreamPool
from shoal.ingress.websocket import proxy_websocket

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailers", b"transfer-encoding", b"upgrade", b"host"})


def _page(status: int, title: str, detail: str) -> Response:
    body = f"<!doctype html><title>{status} {title}</title><h1>{title}</h1><p>{html.escape(detail)}</p>\n"
    return Response(body, status_code=status, media_type="text/html")


def _host(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"host":
            host: str = value.decode("latin-1")
            return host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return ""


def redirect_response(redirect: Redirect, scope: Scope, host: str) -> Response:
    path = redirect.uri or scope["path"]
    authority = redirect.authority or host
    port = f":{redirect.port}" if redirect.port else ""
    query = scope.get("query_string", b"").decode("latin-1")
    target = f"{redirect.scheme}://{authority}{port}{path}" + (f"?{query}" if query and not redirect.uri else "")
    return RedirectResponse(target, status_code=redirect.code)


def static_response(site: StaticSite, path: str) -> Response:
    root = site.root.resolve()
    candidate = (root / path.lstrip("/")).resolve()
    if root != candidate and root not in candidate.parents:
        return _page(404, "Not Found", "no such file")
    if candidate.is_dir():
        candidate = candidate / site.index_document
    if candidate.is_file():
        return FileResponse(candidate)
    if site.catchall_document and (root / site.catchall_document).is_file():
        return FileResponse(root / site.catchall_document)
    error = root / (site.error_document or "404.html")
    if error.is_file():
        return FileResponse(error, status_code=404)
    return _page(404, "Not Found", f"{path} is not part of this site")


class IngressProxy:
    def __init__(self, table: RouteTable) -> None:
        self._table = table
        self._pool = UpstreamPool()

    def close(self) -> None:
        self._pool.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            return
        cors: list[tuple[str, str]] = []
        response = await self._route(scope, receive, _with_cors(send, cors), cors)
        if response is not None:
            await response(scope, receive, _with_cors(send, cors))

    async def _route(self, scope: Scope, receive: Receive, send: Send, cors: list[tuple[str, str]]) -> Response | None:
        host = _host(scope)
        app = self._table.lookup(host)
        if app is None:
            return _page(404, "No app here", f"No app is live at {host or 'this address'}.")
        if app.offline_page is not None:
            return Response(app.offline_page, status_code=503, media_type="text/html", headers={"retry-after": "300"})
        path = scope["path"]
        found = app.match(path, host)
        if found is None:
            return _page(404, "Not Found", f"No route of this app matches {path}.")
        route, policy = found
        if policy is not None:
            answered = _cors(policy, scope, cors)
            if answered is not None:
                return answered
        if route.redirect is not None:
            return redirect_response(route.redirect, scope, host)
        backend = app.backends.get(route.component or "")
        if isinstance(backend, StaticSite):
            return static_response(backend, route.forward_path(path))
        if not isinstance(backend, Upstream) or not backend.addresses:
            return _page(503, "Service Unavailable", f"{route.component} has no healthy instance right now.")
        return await self._forward(scope, receive, send, route, backend, host)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, route: Route, upstream: Upstream,
                       host: str) -> Response | None:
        content_length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        chunked = any(k == b"transfer-encoding" for k, _ in scope["headers"]) and content_length is None
        body = _body(receive) if chunked or (content_length not in (None, b"0")) else None
        query = scope.get("query_string", b"")
        target = _target_path(route, scope, host).encode("ascii") + (b"?" + query if query else b"")
        head = b"".join([scope["method"].encode("ascii"), b" ", target, b" HTTP/1.1\r\n",
                         *(k + b": " + v + b"\r\n" for k, v in _upstream_headers(scope, host)),
                         b"transfer-encoding: chunked\r\n" if chunked else b"", b"\r\n"])
        for address in upstream.order():
            for fresh in (False, True):
                try:
                    connection, reused = await self._pool.connect(address, fresh)
                except OSError:
                    break  # refused before anything was sent: the next instance can take it
                try:
                    await connection.request(head, body, chunked)
                    status, headers, chunks = await connection.response(scope["method"] == "HEAD")
                except (OSError, UpstreamError) as exc:
                    connection.close()
                    if reused and body is None:
                        continue  # a kept-alive connection the instance had closed: try a new one
                    return _page(502, "Bad Gateway", f"{route.component} failed to answer: {exc}")
                await _relay(status, headers, chunks, send)
                self._pool.release(connection)
                return None
        return _page(502, "Bad Gateway", f"no instance of {route.component} accepted the connection")

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route a websocket like a request (no redirects, static sites or CORS) and relay it."""
        host = _host(scope)
        app = self._table.lookup(host)
        found = app.match(scope["path"], host) if app is not None and app.offline_page is None else None
        if app is None or found is None or found[0].redirect is not None:
            await send({"type": "websocket.close", "code": 1008})
            return
        route = found[0]
        backend = app.backends.get(route.component or "")
        if not isinstance(backend, Upstream) or not backend.addresses:
            await send({"type": "websocket.close", "code": 1011})
            return
        address = backend.order()[0]
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"ws://{address[0]}:{address[1]}{_target_path(route, scope, host)}" + (f"?{query}" if query else "")
        await proxy_websocket(scope, receive, send, url, _upstream_headers(scope, host))

def _upstream_headers(scope: Scope, host: str) -> list[tuple[bytes, bytes]]:
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
    client_ip = (scope.get("client") or ("", 0))[0]
    return headers + [(b"host", host.encode()), (b"x-forwarded-for", client_ip.encode()),
                      (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
                      (b"x-forwarded-host", host.encode())]


def _target_path(route: Route, scope: Scope, host: str) -> str:
    """The path the instance gets, percent-encoded as the client sent it (``%2F`` stays ``%2F``).

    Prefixes are matched on the decoded path; when the raw path does not start with the prefix
    as written (the prefix itself was percent-encoded), the decoded result is re-encoded instead.
    """
    raw = _raw_path(scope)
    if route.matches(raw, host):
        return route.forward_path(raw)
    return quote(route.forward_path(scope["path"]), safe="/:@!$&'()*+,;=-._~")


def _raw_path(scope: Scope) -> str:
    """The path as the client sent it (percent-encoding kept), for a websocket URL."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1").split("?", 1)[0] if raw else str(scope["path"])


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def _cors(policy: CorsPolicy, scope: Scope, cors: list[tuple[str, str]]) -> Response | None:
    """Answer a CORS preflight here (the app never sees it); otherwise note the headers to add."""
    origin = _header(scope, b"origin")
    if scope["method"] == "OPTIONS":
        headers = preflight(policy, origin, _header(scope, b"access-control-request-method"),
                            _header(scope, b"access-control-request-headers"))
        if headers is not None:
            response = Response(status_code=204)
            response.raw_headers = merge_headers(response.raw_headers, headers)
            return response
    cors.extend(simple_headers(policy, origin))
    return None


def _with_cors(send: Send, cors: list[tuple[str, str]]) -> Send:
    """``send`` that adds the route's CORS headers to whatever response goes out."""
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and cors:
            message = {**message, "headers": merge_headers(message.get("headers", []), cors)}
        await send(message)

    return wrapped


async def _relay(status: int, headers: list[tuple[bytes, bytes]], chunks: AsyncIterator[tuple[bytes, bool]],
                 send: Send) -> None:
    """Stream an instance's response to the client; a small one goes out in one message."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(k, v) for k, v in headers if k not in HOP_BY_HOP]})
    async for chunk, last in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": not last})


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return

