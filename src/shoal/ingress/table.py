"""The route table the runtime publishes and the proxy reads: host → the app's routes and backends.

Publishing swaps in a new immutable snapshot, so a request always sees one consistent table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from shoal.domain.routing import Backend, Route, SecureHeaders, StaticSite, Upstream
from shoal.ingress.cors import CorsPolicy

__all__ = ["AppRoutes", "Backend", "RouteTable", "StaticSite", "Upstream", "by_host"]

T = TypeVar("T")


@dataclass(frozen=True)
class AppRoutes:
    app_id: str
    routes: list[Route]
    backends: dict[str, Backend]
    offline_page: str | None = None  # set while the app is in maintenance: every request gets it with 503
    # One compiled CORS policy per route (None where the rule has none), built once per publish.
    cors: list[CorsPolicy | None] = field(default_factory=list)
    error_page: str | None = None  # ingress.custom_error_page_url's HTML, for the ingress's own 5xx answers
    secure: SecureHeaders | None = None  # ingress.secure_header, applied to every answer of the app

    def match(self, path: str, host: str) -> tuple[Route, CorsPolicy | None] | None:
        for route, policy in zip(self.routes, self.cors or [None] * len(self.routes), strict=True):
            if route.matches(path, host):
                return route, policy
        return None


class RouteTable:
    def __init__(self) -> None:
        self.version = 0  # changes with every publish or withdraw: what was decided before may not hold
        self._by_host: dict[str, AppRoutes] = {}
        self._hosts_of: dict[str, tuple[str, ...]] = {}
        # Custom domain → "1.2" / "1.3" (spec.domains[].minimum_tls_version): these hosts are HTTPS.
        self._min_tls: dict[str, str] = {}

    def publish(self, app_id: str, hosts: list[str], routes: list[Route], backends: dict[str, Backend],
                offline_page: str | None = None, min_tls: dict[str, str] | None = None,
                error_page: str | None = None, secure: SecureHeaders | None = None) -> None:
        policies = [CorsPolicy.from_spec(r.cors) if r.cors else None for r in routes]
        entry = AppRoutes(app_id, routes, backends, offline_page, policies, error_page, secure)
        table = {h: e for h, e in self._by_host.items() if e.app_id != app_id}
        table.update({h.lower(): entry for h in hosts})
        self._by_host = table
        self.version += 1
        self._hosts_of = {**self._hosts_of, app_id: tuple(h.lower() for h in hosts)}
        self._min_tls = {**{h: v for h, v in self._min_tls.items() if h not in self._hosts_of[app_id]},
                         **{h.lower(): v for h, v in (min_tls or {}).items()}}

    def withdraw(self, app_id: str) -> None:
        self._by_host = {h: e for h, e in self._by_host.items() if e.app_id != app_id}
        self.version += 1
        self._hosts_of = {a: h for a, h in self._hosts_of.items() if a != app_id}

    def lookup(self, host: str) -> AppRoutes | None:
        """The app serving ``host``: an exact name first, then a wildcard domain (``*.example.com``)."""
        return by_host(self._by_host, host)

    def min_tls(self, host: str) -> str | None:
        return by_host(self._min_tls, host)


def by_host(entries: Mapping[str, T], host: str) -> T | None:
    """The entry for ``host`` (lower-case keys): its exact name first, then the wildcard one level up."""
    host = host.lower()
    found = entries.get(host)
    if found is None and "." in host:
        found = entries.get("*." + host.split(".", 1)[1])
    return found
