"""One request and its response, from the moment its headers are read to the last byte out.

Role: carry one request to the place ``dispatch`` chose (the ingress's own answer, a static
file, or an instance) and its answer back to the client, streaming both bodies. It must not
parse bytes (``client`` and ``upstream`` do) or decide routes (``dispatch`` does).

A request goes to the next instance when that is safe: the connection was refused (nothing was
sent), or the method is idempotent and the instance failed before answering a byte while the
whole request is still at hand (``REPLAY_BYTES``).
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

from shoal.ingress.cors import merge_headers
from shoal.ingress.dispatch import (
    Answer,
    Decision,
    Forward,
    Headers,
    Serve,
    decide,
    error_answer,
    host_of,
    page,
    split_target,
)
from shoal.ingress.static import Sink, serve_static
from shoal.ingress.upstream import Address, Link, Pool, UpstreamConnection

if TYPE_CHECKING:
    from shoal.ingress.client import ClientConnection

# Headers that describe one connection (RFC 9110 §7.6.1), and those the ingress sets itself.
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
                        b"proxy-connection", b"te", b"trailer", b"trailers", b"transfer-encoding", b"upgrade"})
_NOT_FORWARDED = HOP_BY_HOP | {b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"expect"}
_NOT_FORWARDED_CHUNKED = _NOT_FORWARDED | {b"content-length"}
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
REPLAY_BYTES = 64 * 1024  # a request up to this size is kept until answered, so it can be retried
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_day_cache: tuple[int, date] = (-1, date.min)


_date_cache: tuple[int, bytes] = (-1, b"")


def _http_date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode())
    return _date_cache[1]


def _today() -> date:
    global _day_cache
    day = int(time.time() // 86400)
    if _day_cache[0] != day:
        _day_cache = (day, date.fromtimestamp(day * 86400.0 + 43200))
    return _day_cache[1]


class Exchange:
    __slots__ = ("client", "url", "headers", "method", "keep_alive", "upgrade", "http10", "headers_done",
                 "request_done", "response_started", "response_done", "decision", "upstream", "replay",
                 "replay_size", "chunked_request", "attempts", "fresh", "status", "bytes_out", "started_at",
                 "chunked_response", "no_body", "close_after", "task", "abandoned", "early", "failure")

    def __init__(self, client: ClientConnection) -> None:
        self.client = client
        self.url = b""
        self.headers: Headers = []
        self.method = b"GET"
        self.keep_alive = True
        self.upgrade = False
        self.http10 = False
        self.headers_done = False
        self.request_done = False
        self.response_started = False
        self.response_done = False
        self.decision: Decision | None = None
        self.upstream: Link | None = None
        self.replay: list[bytes] | None = []  # what the instance must be sent (again, on a retry)
        self.replay_size = 0
        self.chunked_request = False
        self.attempts: list[Address] = []
        self.fresh = False  # the next attempt must open a new connection
        self.status = 0
        self.bytes_out = 0
        self.started_at = 0.0
        self.chunked_response = False
        self.no_body = False
        self.close_after = False
        self.task: asyncio.Task[None] | None = None
        self.abandoned = False
        self.failure = ""  # why the last instance tried did not answer
        self.early: list[bytes] = []  # body that came before the request's turn

    # -- the request --------------------------------------------------------------------------------

    def start(self) -> None:
        """The request's head is complete: decide where it goes and start it on its way."""
        self.started_at = time.monotonic()
        self.close_after = self.upgrade  # unless the instance switches protocols, the connection ends
        index = dict(self.headers)
        self.chunked_request = b"transfer-encoding" in index
        ingress = self.client.ingress
        upgrade_to = ingress.https_port if self.client.scheme == b"http" else None
        key = (index.get(b"host", b""), self.url, upgrade_to)
        decision = ingress.remembered(key)
        if decision is None:
            raw_path, query = split_target(self.url)
            origin = index.get(b"origin")
            asked_method = index.get(b"access-control-request-method")
            asked_headers = index.get(b"access-control-request-headers")
            decision = decide(ingress.table, self.method, host_of(key[0]), raw_path, query,
                              origin.decode("latin-1") if origin is not None else None,
                              asked_method.decode("latin-1") if asked_method is not None else None,
                              asked_headers.decode("latin-1") if asked_headers is not None else None, upgrade_to)
            if decision.cacheable:
                ingress.remember(key, decision)
        self.decision = decision
        action = decision.action
        if isinstance(action, Forward):
            if index.get(b"expect", b"").lower() == b"100-continue":
                self.client.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            head = self._request_head(action.target, action.host, index.get(b"upgrade", b""))
            self.replay = [head]
            self.replay_size = len(head)
            for chunk in self.early:
                self._send(b"%x\r\n%b\r\n" % (len(chunk), chunk) if self.chunked_request else chunk)
            if self.request_done and self.chunked_request:
                self._send(b"0\r\n\r\n")
            self.early = []
            if action.upstream.asleep:
                self.client.pause("wake")  # the request waits, unread beyond its head, while one starts
                self.task = asyncio.ensure_future(self._wake(action))
            else:
                self.attempts = action.upstream.order()
                self._attach()
        elif isinstance(action, Serve):
            self.task = asyncio.ensure_future(self._serve(action))
        else:
            self.close_after = self.close_after or b"expect" in index
            self.answer(action)

    def _request_head(self, target: bytes, host: bytes, upgrade: bytes) -> bytes:
        parts = [self.method, b" ", target, b" HTTP/1.1\r\n"]
        skip = _NOT_FORWARDED_CHUNKED if self.chunked_request else _NOT_FORWARDED
        forwarded_for = None
        for name, value in self.headers:
            if name in skip:
                if name == b"x-forwarded-for":
                    forwarded_for = value
                continue
            parts += (name, b": ", value, b"\r\n")
        ip = self.client.ip
        parts += (b"host: ", host, b"\r\nx-forwarded-for: ", forwarded_for + b", " + ip if forwarded_for else ip,
                  b"\r\nx-forwarded-proto: ", self.client.scheme, b"\r\nx-forwarded-host: ", host, b"\r\n")
        if self.upgrade:
            parts += (b"connection: upgrade\r\nupgrade: ", upgrade, b"\r\n")
        elif self.chunked_request:
            parts.append(b"transfer-encoding: chunked\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def request_body(self, chunk: bytes) -> None:
        if self.response_done:
            return  # answered already: the rest of the body goes nowhere
        if self.decision is None:
            self.early.append(chunk)  # a pipelined request waiting its turn
        elif isinstance(self.decision.action, Forward):
            self._send(b"%x\r\n%b\r\n" % (len(chunk), chunk) if self.chunked_request else chunk)

    def request_complete(self) -> None:
        self.request_done = True
        if self.decision is not None and isinstance(self.decision.action, Forward) and not self.response_done \
                and self.chunked_request:
            self._send(b"0\r\n\r\n")
        if self.response_done:
            self.client.finished(self)

    def _send(self, data: bytes) -> None:
        if self.replay is not None:
            self.replay_size += len(data)
            if self.replay_size <= REPLAY_BYTES or self.upstream is None:
                self.replay.append(data)
            else:
                self.replay = None  # too big to keep: this request will not be retried
        if self.upstream is not None:
            self.upstream.write(data)

    # -- choosing an instance -------------------------------------------------------------------------

    def _pool(self) -> Pool:
        action = self.decision.action if self.decision else None
        ingress = self.client.ingress
        return ingress.h2_pool if isinstance(action, Forward) and action.upstream.http2 else ingress.pool

    async def _wake(self, action: Forward) -> None:
        """The service is asleep (inactivity_sleep): have an instance started, then go on as usual."""
        wake = action.upstream.wake
        try:
            if wake is not None:
                await wake()
        finally:
            self.client.resume("wake")
        if not self.abandoned:
            self.attempts = action.upstream.order()
            if not self.attempts:
                self.failure = "{} is asleep and did not wake in time"
            self._attach()

    def _attach(self) -> None:
        pool = self._pool()
        while self.attempts:
            address = self.attempts[0]
            connection = None if self.fresh else pool.take(address)
            if connection is not None:
                self._send_on(connection)
                return
            self.client.pause("connect")
            self.task = asyncio.ensure_future(self._connect(address))
            return
        self._give_up(self.failure or "no instance of {} accepted the connection")

    async def _connect(self, address: Address) -> None:
        try:
            connection = await self._pool().connect(address)
        except (OSError, TimeoutError):
            if not self.abandoned:
                self.attempts.pop(0)  # refused before anything was sent: the next instance can take it
                self.fresh = False
                self.client.resume("connect")
                self._attach()
            return
        self.client.resume("connect")
        if self.abandoned:
            self._pool().release(connection, True)
            return
        self._send_on(connection)

    def _send_on(self, connection: Link) -> None:
        assert self.replay is not None  # a retry is only tried while the request is at hand
        self.upstream = connection
        connection.send(self, b"".join(self.replay), self.method == b"HEAD")

    def overdue(self, cutoff: float) -> bool:
        """Forwarded before ``cutoff`` (monotonic time) and no answer begun yet."""
        return (not self.response_started and not self.response_done and 0 < self.started_at < cutoff
                and self.decision is not None and isinstance(self.decision.action, Forward))

    def time_out(self, seconds: float) -> None:
        """The instance has not begun to answer in ``seconds``: give up on it with a 504 and end
        the connection (whatever is left of the request goes nowhere)."""
        link, self.upstream = self.upstream, None
        if link is not None:
            link.abandon()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.close_after = True
        self._give_up(f"{{}} did not begin to answer within {seconds:g} s", 504, "Gateway Timeout")
        if not self.request_done:
            self.request_done = True
            self.client.finished(self)

    def _give_up(self, why: str, status: int = 502, title: str = "Bad Gateway") -> None:
        """Answer with the ingress's error page (or the app's own); ``{}`` in ``why`` names the component."""
        component = self.decision.component if self.decision else ""
        failed = page(status, title, why.format(component or "the component"))
        self.answer(error_answer(failed, self.decision.error_page if self.decision else None))

    # -- the instance's answer (shoal.ingress.upstream.Receiver) --------------------------------------

    def upstream_head(self, status: int, reason: bytes, headers: Headers) -> None:
        if self.abandoned:
            return
        self.status = status
        self.no_body = self.method == b"HEAD" or status in (204, 304)
        decision = self.decision
        if decision is not None:
            if decision.cors:
                headers = merge_headers(headers, decision.cors)
            if decision.secure is not None:
                headers = decision.secure.apply(headers)
        parts = [b"HTTP/1.1 %d %b\r\n" % (status, reason or _REASONS.get(status, b"Unknown"))]
        has_length = False
        for name, value in headers:
            if name in HOP_BY_HOP:
                continue
            if name == b"content-length":
                has_length = True
            parts += (name, b": ", value, b"\r\n")
        if not self.no_body and not has_length:
            if self.http10:
                self.close_after = True  # the body ends when the connection does
            else:
                self.chunked_response = True
                parts.append(b"transfer-encoding: chunked\r\n")
        if self.close_after or not self.keep_alive:
            parts.append(b"connection: close\r\n")
        elif self.http10:
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        self.response_started = True
        self._out(b"".join(parts))

    def upstream_body(self, chunk: bytes) -> None:
        if self.abandoned or self.no_body or not chunk:
            return
        if self.chunked_response:
            self._out(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        else:
            self._out(chunk)

    def upstream_done(self) -> None:
        """The answer is complete."""
        self.upstream = None
        if self.chunked_response:
            self._out(b"0\r\n\r\n")
        self.response_done = True
        if self.request_done:
            self.client.finished(self)

    def upstream_upgraded(self, status: int, reason: bytes, headers: Headers, rest: bytes) -> None:
        """The instance switched protocols (a websocket): from here on, bytes pass both ways untouched."""
        connection, self.upstream = self.upstream, None
        if not isinstance(connection, UpstreamConnection) or self.abandoned:
            if connection is not None:
                connection.close()
            return
        self.status = status
        parts = [b"HTTP/1.1 %d %b\r\n" % (status, reason or b"Switching Protocols")]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        self._out(b"".join(parts))
        self.response_done = True
        self.client.tunnel_to(self, connection, rest)

    def upstream_failed(self, connection: Link, reason: str) -> None:
        if connection is not self.upstream or self.abandoned:
            return
        self.upstream = None
        if self.response_started:
            if connection.finish_close_delimited() and not self.no_body:
                self.upstream_done()  # that was the body's end
            else:
                self.client.abort()  # cut off mid-answer: the client must see it truncated
            return
        safe = self.replay is not None and connection.received == 0 and self.method in IDEMPOTENT
        if not safe:
            self._give_up(f"{{}} failed to answer: {reason}")
            return
        self.failure = f"{{}} failed to answer: {reason}"
        if connection.reused:
            self.fresh = True  # a kept-alive socket the instance let go: try a new one
        else:
            self.attempts.pop(0)
            self.fresh = False
        self._attach()

    def upstream_writable(self, writable: bool) -> None:
        if writable:
            self.client.resume("upstream")
        else:
            self.client.pause("upstream")

    def hold(self) -> None:
        self.client.hold()

    def release(self) -> None:
        self.client.flush()

    # -- answers the ingress writes itself -----------------------------------------------------------

    def answer(self, answer: Answer) -> None:
        self.upstream_head(answer.status, b"", [*answer.headers, (b"content-length", b"%d" % len(answer.body)),
                                                (b"date", _http_date())])
        self.upstream_body(answer.body)
        self.upstream_done()

    async def _serve(self, action: Serve) -> None:
        sink = Sink(lambda status, headers: self.upstream_head(status, b"", headers), self.upstream_body,
                    self._static_done, self.client.drain)
        try:
            await serve_static(action.site, action.path, self.method.decode("latin-1"), self.headers, sink)
        except OSError as exc:
            if not self.response_started:
                self.answer(page(500, "Internal Server Error", f"could not read the file: {exc}"))
            else:
                self.client.abort()

    def _static_done(self) -> None:
        self.upstream_done()

    # -- the end -----------------------------------------------------------------------------------------

    def _out(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.client.write(data)

    def record(self) -> None:
        decision = self.decision
        if decision is not None and decision.app_id is not None and self.client.ingress.meter is not None:
            self.client.ingress.meter.record(decision.app_id, decision.component, _today(), self.status,
                                             self.bytes_out, time.monotonic() - self.started_at)

    def abandon(self) -> None:
        """The client is gone: stop whatever is still in flight for it."""
        self.abandoned = True
        if self.upstream is not None:
            self.upstream.abandon()
            self.upstream = None
        if self.task is not None and not self.task.done():
            self.task.cancel()
