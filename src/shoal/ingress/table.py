"""The route table the runtime publishes and the proxy reads: host → the app's routes and backends.

Publishing swaps in a new immutable snapshot, so a request always sees one consistent table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.domain.routing import Backend, Route, StaticSite, Upstream
from shoal.ingress.cors import CorsPolicy

__all__ = ["AppRoutes", "Backend", "RouteTable", "StaticSite", "Upstream"]


@dataclass(frozen=True)
class AppRoutes:
    app_id: str
    routes: list[Route]
    backends: dict[str, Backend]
    offline_page: str | None = None  # set while the app is in maintenance: every request gets it with 503
    # One compiled CORS policy per route (None where the rule has none), built once per publish.
    cors: list[CorsPolicy | None] = field(default_factory=list)

    def match(self, path: str, host: str) -> tuple[Route, CorsPolicy | None] | None:
        for route, policy in zip(self.routes, self.cors or [None] * len(self.routes), strict=True):
            if route.matches(path, host):
                return route, policy
        return None


class RouteTable:
    def __init__(self) -> None:
        self._by_host: dict[str, AppRoutes] = {}
        self._hosts_of: dict[str, tuple[str, ...]] = {}

    def publish(self, app_id: str, hosts: list[str], routes: list[Route], backends: dict[str, Backend],
                offline_page: str | None = None) -> None:
        policies = [CorsPolicy.from_spec(r.cors) if r.cors else None for r in routes]
        entry = AppRoutes(app_id, routes, backends, offline_page, policies)
        table = {h: e for h, e in self._by_host.items() if e.app_id != app_id}
        table.update({h.lower(): entry for h in hosts})
        self._by_host = table
        self._hosts_of = {**self._hosts_of, app_id: tuple(h.lower() for h in hosts)}

    def withdraw(self, app_id: str) -> None:
        self._by_host = {h: e for h, e in self._by_host.items() if e.app_id != app_id}
        self._hosts_of = {a: h for a, h in self._hosts_of.items() if a != app_id}

    def lookup(self, host: str) -> AppRoutes | None:
        return self._by_host.get(host.lower())

    def hosts(self) -> list[str]:
        return sorted(self._by_host)
