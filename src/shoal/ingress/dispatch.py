"""What the ingress does with a request: answer it itself, serve a static site's file, or forward
it to a service — decided from the route table alone, before any byte moves.

Role: the decision only. It must not touch sockets or files (``exchange`` and ``static`` do),
so every rule kind can be checked here without a server.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import quote, unquote

from shoal.domain.routing import Redirect, Route, SecureHeaders
from shoal.ingress.cors import CorsPolicy, merge_headers, preflight, simple_headers
from shoal.ingress.table import AppRoutes, RouteTable, StaticSite, Upstream

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Answer:
    """A response the ingress writes itself (pages, redirects, preflights)."""

    status: int
    headers: Headers
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Forward:
    upstream: Upstream
    target: bytes  # path and query as the instance gets them
    host: bytes  # the Host the instance gets


@dataclass(frozen=True, slots=True)
class Serve:
    site: StaticSite
    path: str


@dataclass(frozen=True, slots=True)
class Decision:
    action: Answer | Forward | Serve
    app_id: str | None = None  # None: no app claims the host (not counted against any app)
    component: str = ""
    cors: tuple[tuple[str, str], ...] = ()  # headers to add to whatever answer goes out
    error_page: str | None = None  # the app's page for the ingress's own 5xx answers
    # Depends only on the Host, the request target and the route table (no CORS policy reads the
    # request's Origin), so the same request may reuse it until the table changes.
    cacheable: bool = False
    secure: SecureHeaders | None = None  # the app's ingress.secure_header, applied to the answer's head


def page(status: int, title: str, detail: str, extra: Headers | None = None) -> Answer:
    body = f"<!doctype html><title>{status} {title}</title><h1>{title}</h1><p>{html.escape(detail)}</p>\n".encode()
    return Answer(status, [(b"content-type", b"text/html; charset=utf-8"), *(extra or [])], body)


def error_answer(answer: Answer, custom: str | None) -> Answer:
    """A platform error (5xx) with the app's ``custom_error_page_url`` page, when it has one."""
    if custom is None:
        return answer
    return Answer(answer.status, [(b"content-type", b"text/html; charset=utf-8")], custom.encode())


def split_target(url: bytes) -> tuple[str, bytes]:
    """The raw path (percent-encoding kept) and query of a request target."""
    path, _, query = url.partition(b"?")
    if path.startswith((b"http://", b"https://")):  # absolute form: keep only the path
        path = b"/" + path.split(b"/", 3)[-1] if path.count(b"/") >= 3 else b"/"
    return path.decode("latin-1"), query


def host_of(value: bytes) -> str:
    host = value.decode("latin-1").lower()
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


def decide(table: RouteTable, method: bytes, host: str, raw_path: str, query: bytes, origin: str | None,
           preflight_method: str | None, preflight_headers: str | None, upgrade_to: int | None = None) -> Decision:
    """``upgrade_to``: the HTTPS port, when this request came over plain HTTP and the ingress has one."""
    app = table.lookup(host)
    if app is None:
        return Decision(page(404, "No app here", f"No app is live at {host or 'this address'}."))
    decision = _decide(table, app, method, host, raw_path, query, origin, preflight_method, preflight_headers,
                       upgrade_to)
    if app.secure is None:  # the common case costs one attribute test
        return decision
    return Decision(decision.action, decision.app_id, decision.component, decision.cors, decision.error_page,
                    decision.cacheable, app.secure)


def _decide(table: RouteTable, app: AppRoutes, method: bytes, host: str, raw_path: str, query: bytes,
            origin: str | None, preflight_method: str | None, preflight_headers: str | None,
            upgrade_to: int | None) -> Decision:
    if upgrade_to is not None and table.min_tls(host) is not None:
        port = "" if upgrade_to == 443 else f":{upgrade_to}"
        return Decision(redirect(Redirect(authority=host + port, code=308), raw_path, query, host), app.app_id)
    if app.offline_page is not None:
        return Decision(Answer(503, [(b"content-type", b"text/html; charset=utf-8"), (b"retry-after", b"300")],
                               app.offline_page.encode()), app.app_id)
    path = unquote(raw_path) if "%" in raw_path else raw_path
    found = app.match(path, host)
    if found is None:
        return Decision(page(404, "Not Found", f"No route of this app matches {path}."), app.app_id)
    route, policy = found
    component = route.component or ""
    cors: tuple[tuple[str, str], ...] = ()
    if policy is not None:
        if method == b"OPTIONS" and (answered := _preflight(policy, origin, preflight_method, preflight_headers)):
            return Decision(answered, app.app_id, component)
        cors = tuple(simple_headers(policy, origin))
    if route.redirect is not None:
        return Decision(redirect(route.redirect, raw_path, query, host), app.app_id, component, cors)
    backend = app.backends.get(component)
    if isinstance(backend, StaticSite):
        return Decision(Serve(backend, route.forward_path(path)), app.app_id, component, cors)
    if not isinstance(backend, Upstream) or not (backend.addresses or backend.asleep):
        unavailable = page(503, "Service Unavailable", f"{component} has no healthy instance right now.")
        return Decision(error_answer(unavailable, app.error_page), app.app_id, component, cors)
    target = target_path(route, raw_path, path, host).encode("latin-1") + (b"?" + query if query else b"")
    return Decision(Forward(backend, target, host.encode("latin-1")), app.app_id, component, cors, app.error_page,
                    cacheable=policy is None)


def _preflight(policy: CorsPolicy, origin: str | None, method: str | None, headers: str | None) -> Answer | None:
    """The ingress's own answer to a CORS preflight (the app never sees it); None for other OPTIONS."""
    found = preflight(policy, origin, method, headers)
    if found is None:
        return None
    return Answer(204, merge_headers([], found))


def redirect(rule: Redirect, raw_path: str, query: bytes, host: str) -> Answer:
    path = rule.uri or raw_path
    authority = rule.authority or host
    port = f":{rule.port}" if rule.port else ""
    target = f"{rule.scheme}://{authority}{port}{path}"
    if query and not rule.uri:
        target += "?" + query.decode("latin-1")
    return Answer(rule.code, [(b"location", target.encode("latin-1")), (b"content-type", b"text/plain")],
                  f"Redirecting to {target}\n".encode("latin-1"))


def target_path(route: Route, raw_path: str, path: str, host: str) -> str:
    """The path the instance gets, percent-encoded as the client sent it (``%2F`` stays ``%2F``).

    Prefixes are matched on the decoded path; when the raw path does not start with the prefix
    as written (the prefix itself was percent-encoded), the decoded result is re-encoded instead.
    """
    if route.matches(raw_path, host):
        return route.forward_path(raw_path)
    return quote(route.forward_path(path), safe="/:@!$&'()*+,;=-._~")
