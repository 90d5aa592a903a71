"""Routing: the normalised spec's ``ingress.rules`` as routes the ingress can match (pure).

Longest prefix wins; a prefix ``/api`` matches ``/api``, ``/api/`` and below but not ``/apis``.
By default the matched prefix is stripped before forwarding; ``preserve_path_prefix`` keeps it and
``rewrite`` replaces it (do-app-platform.md §4.9).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Redirect:
    uri: str | None = None
    authority: str | None = None
    port: int | None = None
    scheme: str = "https"
    code: int = 302


@dataclass(frozen=True)
class Route:
    prefix: str
    component: str | None = None
    preserve_path_prefix: bool = False
    rewrite: str | None = None
    redirect: Redirect | None = None
    authority: str | None = None  # match.authority.exact
    cors: dict[str, Any] | None = field(default=None, compare=False)

    def matches(self, path: str, host: str) -> bool:
        if self.authority and self.authority.lower() != host.lower():
            return False
        prefix = self.prefix.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")

    def forward_path(self, path: str) -> str:
        """The path the component sees for a request to ``path``."""
        if self.preserve_path_prefix:
            return path
        rest = path[len(self.prefix.rstrip("/")):]
        if self.rewrite is not None:
            return (self.rewrite.rstrip("/") + rest) if rest else self.rewrite
        return rest if rest.startswith("/") else "/" + rest


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _route(rule: dict[str, Any]) -> Route:
    match = rule.get("match") or {}
    prefix = str(((match.get("path") or {}).get("prefix")) or "/")
    authority = (match.get("authority") or {}).get("exact")
    component = rule.get("component") or {}
    redirect = rule.get("redirect")
    return Route(
        prefix=prefix,
        component=component.get("name"),
        preserve_path_prefix=_truthy(component.get("preserve_path_prefix")),
        rewrite=component.get("rewrite"),
        redirect=Redirect(uri=redirect.get("uri"), authority=redirect.get("authority"), port=redirect.get("port"),
                          scheme=redirect.get("scheme") or "https",
                          code=int(redirect.get("redirect_code") or 302)) if redirect else None,
        authority=authority,
        cors=rule.get("cors"),
    )


@dataclass(frozen=True)
class SecureHeaders:
    """``ingress.secure_header``: headers the ingress sets on, or removes from, every answer of an app.

    ``drop`` holds the lower-case names to take out of an answer (those removed, and those set, so
    a header the app sent is replaced rather than doubled); ``add`` what is written instead.
    """

    drop: frozenset[bytes]
    add: tuple[tuple[bytes, bytes], ...]

    def apply(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        kept = [(k, v) for k, v in headers if k.lower() not in self.drop]
        kept.extend(self.add)
        return kept


def secure_headers(spec: dict[str, Any]) -> SecureHeaders | None:
    """The app's secure headers, or None when it has none (the ingress then does no work for them).

    The spec rules guarantee token names and values without line breaks; a later entry for the
    same name wins over an earlier one.
    """
    wanted: dict[bytes, bytes | None] = {}
    for entry in (spec.get("ingress") or {}).get("secure_header") or []:
        name = str(entry.get("key") or "").lower().encode("latin-1")
        if not name:
            continue
        remove = entry.get("remove_header") is True
        wanted[name] = None if remove else str(entry.get("value") or "").encode("latin-1")
    if not wanted:
        return None
    return SecureHeaders(frozenset(wanted), tuple((k, v) for k, v in wanted.items() if v is not None))


def routes_for(spec: dict[str, Any]) -> list[Route]:
    """Routes of a normalised spec, most specific first (authority-bound, then longest prefix)."""
    routes = [_route(r) for r in (spec.get("ingress") or {}).get("rules") or []]
    return sorted(routes, key=lambda r: (r.authority is None, -len(r.prefix.rstrip("/"))))


def match(routes: list[Route], path: str, host: str) -> Route | None:
    return next((r for r in routes if r.matches(path, host)), None)


@dataclass
class Upstream:
    """A service's instances: where requests for it may go.

    ``down`` holds the instances the runtime has seen fail their readiness checks or stop
    running; they are tried only after every other one, so a hung or restarting instance gets no
    traffic while a healthy one can take it (and a readiness check that is wrong about every
    instance still lets requests through).
    """

    addresses: list[tuple[str, int]]
    http2: bool = False  # the service speaks HTTP/2 cleartext (spec protocol: HTTP2)
    down: set[tuple[str, int]] = field(default_factory=set)
    # Asleep (inactivity_sleep): no addresses, and ``wake`` starts an instance, returning once one
    # is ready (or the runtime gave up); the ingress holds requests until then.
    wake: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
    last_used: float = 0.0  # monotonic time of the latest request sent its way (idleness is read from it)
    _turn: itertools.count = field(default_factory=itertools.count, repr=False)  # type: ignore[type-arg]

    def mark(self, address: tuple[str, int], ready: bool) -> None:
        if ready:
            self.down.discard(address)
        elif address in self.addresses:
            self.down.add(address)

    @property
    def asleep(self) -> bool:
        return self.wake is not None and not self.addresses

    def order(self) -> list[tuple[str, int]]:
        """Addresses to try, in turn: the ready ones round-robin from the next one's turn, then the rest."""
        self.last_used = time.monotonic()
        ready = [a for a in self.addresses if a not in self.down] if self.down else self.addresses
        turns = ready or self.addresses
        if not turns:
            return []
        start = next(self._turn) % len(turns)
        ordered = turns[start:] + turns[:start]
        if ready and len(ready) < len(self.addresses):
            ordered += [a for a in self.addresses if a in self.down]
        return ordered


@dataclass(frozen=True)
class StaticSite:
    root: Path
    index_document: str = "index.html"
    error_document: str | None = None
    catchall_document: str | None = None


Backend = Upstream | StaticSite
