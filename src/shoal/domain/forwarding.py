"""Log forwarding, as values: which destinations a component's lines go to, and what a forwarded line is.

A component's ``log_destinations`` (do-runtime-reference.md §4) are read from the deployment's own
plan, so lines of an old deployment still draining go where *its* spec said. Each destination becomes
one frozen ``Destination``; equal destinations are one queue in the forwarder, so a redeploy that
leaves a destination unchanged keeps its queue (and whatever it is still retrying).

The generic fields ``endpoint``, ``headers`` and ``tls_insecure`` (godo's ``AppLogDestinationSpec``)
are taken from the plan whether or not the spec models accept them yet: ``headers`` are added
to every HTTP request of the destination, ``tls_insecure`` skips certificate checks, and a
destination with an ``endpoint`` but none of the four kinds is a generic HTTP destination that gets
a JSON array of records (the wire of that form is undocumented; see §4.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from shoal.domain.plan import AppPlan, LogDestination

KINDS = ("papertrail", "datadog", "logtail", "open_search")
GENERIC = "endpoint"
DATADOG_DEFAULT = "https://http-intake.logs.datadoghq.com"
MAX_MESSAGE_BYTES = 2048  # what App Platform forwards of one line (do-app-platform.md §4.10)


@dataclass(frozen=True)
class Destination:
    """One log destination of one component, with what it takes to reach it."""

    app_id: str
    component: str
    name: str
    kind: str  # one of KINDS, or GENERIC
    endpoint: str = ""  # a URL, or host:port for Papertrail; "" for the kind's default
    api_key: str = field(default="", repr=False)  # Datadog
    token: str = field(default="", repr=False)  # Logtail
    user: str = ""  # OpenSearch basic auth
    password: str = field(default="", repr=False)
    index: str = "logs"
    cluster_name: str = ""  # OpenSearch: a cluster registered with ``shoal cluster add``
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    tls_insecure: bool = False

    @property
    def label(self) -> str:
        """How reports name it: ``datadog destination "dd" of web``."""
        return f'{self.kind} destination "{self.name}" of {self.component}'


@dataclass(frozen=True)
class Record:
    """One forwarded line: a (masked) log line with the app it belongs to."""

    app_id: str
    app_name: str
    deployment_id: str
    component: str
    stage: str
    ts: datetime
    message: str


def destinations(plan: AppPlan) -> dict[str, list[Destination]]:
    """Component name → its destinations, for every component of the plan that has any."""
    found: dict[str, list[Destination]] = {}
    for unit in plan.units:
        for entry in unit.log_destinations:
            dest = _destination(plan.app_id, unit.name, entry)
            if dest is not None:
                found.setdefault(unit.name, []).append(dest)
    return found


def _destination(app_id: str, component: str, entry: LogDestination) -> Destination | None:
    config = entry.settings
    endpoint = _text(config.get("endpoint"))
    if entry.provider not in KINDS and not endpoint:
        return None
    raw_auth = config.get("basic_auth")
    auth: Mapping[str, Any] = raw_auth if isinstance(raw_auth, Mapping) else {}
    raw_headers = config.get("headers")
    headers = tuple((str(h["key"]), str(h.get("value") or "")) for h in raw_headers or []
                    if isinstance(h, Mapping) and h.get("key")) if isinstance(raw_headers, list) else ()
    return Destination(
        app_id=app_id, component=component, name=entry.name or entry.provider,
        kind=entry.provider if entry.provider in KINDS else GENERIC, endpoint=endpoint,
        api_key=_text(config.get("api_key")), token=_text(config.get("token")),
        user=_text(auth.get("user")), password=_text(auth.get("password")),
        index=_text(config.get("index_name")) or "logs", cluster_name=_text(config.get("cluster_name")),
        headers=headers, tls_insecure=config.get("tls_insecure") is True)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def syslog_address(endpoint: str) -> tuple[str, int]:
    """Papertrail's endpoint as (host, port): ``host:port``, ``syslog+tls://host:port`` and
    ``https://host:port`` all mean syslog over TLS there (§4.1: the port is always given)."""
    text = endpoint.strip()
    parts = urlsplit(text if "://" in text else f"//{text}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"papertrail endpoint {endpoint!r} must name a host and port (logs.example.com:12345)")
    return parts.hostname, port


def clipped(message: str) -> str:
    """At most ``MAX_MESSAGE_BYTES`` of UTF-8, cut on a character boundary."""
    data = message.encode()
    if len(data) <= MAX_MESSAGE_BYTES:
        return message
    return data[:MAX_MESSAGE_BYTES].decode(errors="ignore")


@dataclass(frozen=True)
class Dropped:
    """Lines of one deployment that a destination had to drop, and why."""

    destination: Destination
    deployment_id: str
    count: int
    reason: str
