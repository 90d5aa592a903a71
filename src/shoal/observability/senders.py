"""Senders: one per destination, each speaking that destination's protocol.

``send`` delivers a batch or raises ``DeliveryFailed`` (``permanent`` when the receiver refused the
lines for good: a bad key, a malformed request). A partial success (OpenSearch reports each bulk
item on its own) comes back as an ``Outcome`` naming what to retry and what was rejected.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from shoal.core.aio import within
from shoal.domain.forwarding import DATADOG_DEFAULT, GENERIC, Destination, Record, syslog_address
from shoal.domain.ports import DeliveryFailed
from shoal.observability import wire
from shoal.observability.tls import ClientContexts

TIMEOUT = 10.0
USER_AGENT = "shoal-log-forwarder/1"
LOGTAIL_DEFAULT = "https://in.logs.betterstack.com"


@dataclass(frozen=True)
class Outcome:
    retry: list[Record] = field(default_factory=list)
    rejected: list[Record] = field(default_factory=list)
    reason: str = ""


class Sender(Protocol):
    async def send(self, records: list[Record]) -> Outcome: ...

    async def close(self) -> None: ...


class SyslogSender:
    """RFC 5424 over TLS on one kept-open connection. TCP syslog has no acknowledgements, so a
    connection the receiver closed is noticed (EOF) before each batch and opened again."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self._host, self._port, self._context = host, port, context
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, records: list[Record]) -> Outcome:
        writer = await self._connected()
        try:
            writer.write(b"".join(wire.syslog_line(r) for r in records))
            await within(writer.drain(), TIMEOUT)
        except (OSError, TimeoutError) as exc:
            await self.close()
            raise DeliveryFailed(f"syslog to {self._host}:{self._port} failed: {_why(exc)}") from exc
        return Outcome()

    async def _connected(self) -> asyncio.StreamWriter:
        if self._writer is not None and self._reader is not None:
            if not self._writer.is_closing() and not self._reader.at_eof():
                return self._writer
            await self.close()
        try:
            reader, writer = await within(asyncio.open_connection(
                self._host, self._port, ssl=self._context, server_hostname=self._host), TIMEOUT)
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryFailed(f"the TLS certificate of {self._host}:{self._port} is not trusted "
                                 f"({exc.verify_message}; --log-forward-ca adds a CA)") from exc
        except (OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"cannot connect to {self._host}:{self._port}: {_why(exc)}") from exc
        self._reader, self._writer = reader, writer
        return writer

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await within(writer.wait_closed(), 2)
            except (OSError, TimeoutError, ssl.SSLError):
                pass


Body = Callable[[list[Record]], bytes]
Check = Callable[[httpx.Response, list[Record]], Outcome]


class HttpSender:
    """One POST per batch on a kept-alive connection. 408, 429 and 5xx are worth retrying; any other
    4xx is the receiver refusing these lines, which retrying would not change."""

    def __init__(self, url: str, body: Body, headers: dict[str, str], context: ssl.SSLContext,
                 auth: tuple[str, str] | None = None, compress: bool = False, check: Check | None = None) -> None:
        self._url, self._body, self._compress, self._check = url, body, compress, check
        self._host = urlsplit(url).netloc.rpartition("@")[2]
        self._client = httpx.AsyncClient(verify=context, timeout=TIMEOUT, auth=auth,
                                         headers={"user-agent": USER_AGENT, **headers})

    async def send(self, records: list[Record]) -> Outcome:
        content = self._body(records)
        if self._compress:
            content = gzip.compress(content, compresslevel=5)
        try:
            response = await self._client.post(self._url, content=content)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"cannot reach {self._host}: {_why(exc)}") from exc
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise DeliveryFailed(f"{self._host} answered {status}")
        if status >= 400:
            raise DeliveryFailed(f"{self._host} refused the lines: {status} {response.text[:200]}", permanent=True)
        return self._check(response, records) if self._check else Outcome()

    async def close(self) -> None:
        await self._client.aclose()


class BrokenSender:
    """A destination that cannot be reached as configured (say, a Papertrail endpoint without a port)."""

    def __init__(self, problem: str) -> None:
        self._problem = problem

    async def send(self, records: list[Record]) -> Outcome:
        raise DeliveryFailed(self._problem, permanent=True)

    async def close(self) -> None:
        return None


def bulk_items(response: httpx.Response, records: list[Record]) -> Outcome:
    """OpenSearch answers 200 even when items fail: items refused for load (429, 5xx) are retried,
    the rest of the failed ones are rejected."""
    try:
        answer = response.json()
        items = (answer.get("items") or []) if answer.get("errors") else []
    except (ValueError, AttributeError):
        return Outcome()
    retry: list[Record] = []
    rejected: list[Record] = []
    reason = ""
    for record, item in zip(records, items, strict=False):
        result: Any = next(iter(item.values()), {}) if isinstance(item, dict) else {}
        status = int(result.get("status", 200)) if isinstance(result, dict) else 200
        if status < 300:
            continue
        reason = json.dumps(result.get("error"))[:200] if isinstance(result, dict) else str(status)
        (retry if status == 429 or status >= 500 else rejected).append(record)
    return Outcome(retry, rejected, f"OpenSearch refused documents: {reason}" if reason else "")


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _with_path(url: str, path: str) -> str:
    """``path`` appended unless the URL already names one (an endpoint given with its full path)."""
    parts = urlsplit(url)
    return url if parts.path not in ("", "/") else f"{url.rstrip('/')}{path}"


class SenderFactory:
    """Builds the sender a destination needs, from the operator's settings."""

    def __init__(self, contexts: ClientContexts, logtail_endpoint: str = LOGTAIL_DEFAULT) -> None:
        self._contexts = contexts
        self._logtail = logtail_endpoint

    def __call__(self, dest: Destination) -> Sender:
        context = self._contexts.get(dest.tls_insecure)
        extra = dict(dest.headers)
        if dest.kind == "papertrail":
            try:
                host, port = syslog_address(dest.endpoint)
            except ValueError as exc:
                return BrokenSender(str(exc))
            return SyslogSender(host, port, context)
        if dest.kind == "datadog":
            return HttpSender(_with_path(dest.endpoint or DATADOG_DEFAULT, "/api/v2/logs"), wire.datadog_body,
                              {"dd-api-key": dest.api_key, "content-type": "application/json",
                               "content-encoding": "gzip", **extra}, context, compress=True)
        if dest.kind == "logtail":
            return HttpSender(dest.endpoint or self._logtail, wire.logtail_body,
                              {"authorization": f"Bearer {dest.token}", "content-type": "application/json", **extra},
                              context)
        if dest.kind == "open_search":
            if not dest.endpoint:
                return BrokenSender(f"open_search destination {dest.name!r} has no endpoint")
            auth = (dest.user or "doadmin", dest.password) if dest.user or dest.password else None
            return HttpSender(_with_path(dest.endpoint, "/_bulk"), lambda records: wire.bulk_body(dest.index, records),
                              {"content-type": "application/x-ndjson", **extra}, context, auth=auth, check=bulk_items)
        if dest.kind == GENERIC and dest.endpoint:
            return HttpSender(dest.endpoint, wire.generic_body, {"content-type": "application/json", **extra}, context)
        return BrokenSender(f"log destination {dest.name!r} has no endpoint shoal can send to")
