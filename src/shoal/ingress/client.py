"""A client's connection to the ingress: HTTP/1.1 requests parsed with httptools, answered in order.

Role: turn bytes into exchanges and exchanges' answers into bytes on the socket, with flow
control both ways. It must not decide routes or talk to instances (``exchange`` does).

Reading from the client pauses while something waits (an instance's connection being opened,
an instance that reads slower than the client sends, a pipelined request behind the current
one, a protocol switch the instance has not answered yet) and resumes when nothing does.

A client that goes away before its request is whole (an end of file in the head or the body)
takes its connection and the instance's with it at once: nothing can answer half a request, and
a socket left in CLOSE-WAIT would be a descriptor lost per aborted upload. The ingress's sweep
ends requests whose head does not arrive in time or whose body stops arriving (``stalled``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING, cast

import httptools

from shoal.ingress.dispatch import page
from shoal.ingress.exchange import Exchange
from shoal.ingress.upstream import UpstreamConnection

if TYPE_CHECKING:
    from shoal.ingress.server import Ingress

MAX_HEAD = 64 * 1024  # request line and headers


class HeadTooLarge(Exception):
    pass


class ClientConnection(asyncio.Protocol):
    def __init__(self, ingress: Ingress, scheme: bytes) -> None:
        self.ingress = ingress
        self.scheme = scheme
        self.ip = b""
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self.exchange: Exchange | None = None  # the one being answered
        self._queued: deque[Exchange] = deque()  # pipelined behind it
        self._parsing: Exchange | None = None  # the one the parser is filling
        self._parser = httptools.HttpRequestParser(self)
        self._head_size = 0
        self._paused: set[str] = set()
        self._writable = True
        self._drained: asyncio.Future[None] | None = None
        self._tunnel: UpstreamConnection | None = None
        self._upgrade_rest = b""
        self._outbox: list[bytes] = []
        # While held, writes wait for the flush that ends the current callback (no call_soon).
        self._flush_scheduled = False
        self._loop = asyncio.get_event_loop()  # asyncio.get_running_loop() costs a getpid() call per use
        self._eof = False  # the client half-closed after a whole request: answer it, then close
        self.received = 0  # bytes read from the client, for the sweep to see whether any still arrive
        # What the last sweep saw: the request being read, since when, and how much had arrived.
        self._seen_parsing: Exchange | None = None
        self._seen_received = -1
        self._seen_at = 0.0

    # -- asyncio --------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if not self.ingress.acceptable(transport):
            self.transport.abort()
            self.closed = True
            return
        peer = transport.get_extra_info("peername")
        self.ip = str(peer[0]).encode() if peer else b""
        self.ingress.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel.write(data)
            return
        self.received += len(data)
        self._flush_scheduled = True  # held: flushed below
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade_rest = data[upgrade.args[0]:]
            self.pause("upgrade")  # until the instance says whether it switches
        except httptools.HttpParserCallbackError as exc:
            self._refuse(431 if isinstance(exc.__context__, HeadTooLarge) else 400, "the request head is too large")
        except httptools.HttpParserError as exc:
            self._refuse(400, f"malformed HTTP request ({exc})")
        self.flush()

    def hold(self) -> None:
        """Writes from here on go out together at the next ``flush()``."""
        self._flush_scheduled = True

    def eof_received(self) -> bool | None:
        # A client that half-closes after whole requests still gets their answers; one that ends
        # in the middle of a request (its head or its body) cannot be answered: close both sides.
        if self.exchange is None or self._parsing is not None or self._tunnel is not None:
            return False  # the transport closes; connection_lost abandons what is in flight
        self._eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.ingress.connections.discard(self)
        if self._tunnel is not None:
            self._tunnel.close()
        for exchange in (self.exchange, *self._queued):
            if exchange is not None:
                exchange.abandon()
        self.exchange = None
        self._queued.clear()
        self._wake()

    def pause_writing(self) -> None:
        self._writable = False
        upstream = self._tunnel or (self.exchange.upstream if self.exchange else None)
        if upstream is not None and upstream.transport is not None:
            upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        self._writable = True
        upstream = self._tunnel or (self.exchange.upstream if self.exchange else None)
        if upstream is not None and upstream.transport is not None:
            upstream.transport.resume_reading()
        self._wake()

    # -- httptools --------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        exchange = self._parsing = Exchange(self)
        self._head_size = 0
        if self.exchange is None:
            self.exchange = exchange
        else:
            self._queued.append(exchange)
            self.pause("pipeline")

    def on_url(self, url: bytes) -> None:
        assert self._parsing is not None
        self._parsing.url += url
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._parsing is not None
        self._parsing.headers.append((name.lower(), value))
        self._grow(len(name) + len(value))

    def on_headers_complete(self) -> None:
        exchange = self._parsing
        assert exchange is not None
        parser = self._parser
        exchange.method = parser.get_method()
        exchange.keep_alive = parser.should_keep_alive()
        exchange.upgrade = parser.should_upgrade()
        exchange.http10 = parser.get_http_version() == "1.0"
        exchange.headers_done = True
        if exchange is self.exchange:
            self.idle_since = 0.0
            exchange.start()

    def on_body(self, body: bytes) -> None:
        if self._parsing is not None:
            self._parsing.request_body(body)

    def on_message_complete(self) -> None:
        exchange, self._parsing = self._parsing, None
        if exchange is not None:
            exchange.request_complete()

    def _grow(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD:
            raise HeadTooLarge()

    # -- what exchanges call ------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue ``data``: what one turn of the loop writes goes out in one send (a head and a small
        body together), which is most of the cost of a small answer."""
        if self.closed:
            return
        self._outbox.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True  # flush() after this callback, or when the loop gets to it
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._outbox and self.transport is not None and not self.closed:
            self.transport.write(self._outbox[0] if len(self._outbox) == 1 else b"".join(self._outbox))
        self._outbox.clear()

    def close(self) -> None:
        self.flush()
        if self.transport is not None:
            self.transport.close()

    async def drain(self) -> None:
        """Wait until the client has taken what was written (for answers the ingress streams itself)."""
        if self._writable or self.closed:
            return
        self._drained = self._drained or self._loop.create_future()
        await self._drained

    def _wake(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def pause(self, reason: str) -> None:
        if not self._paused and self.transport is not None:
            self.transport.pause_reading()
        self._paused.add(reason)

    def resume(self, reason: str) -> None:
        if reason in self._paused:
            self._paused.discard(reason)
            if not self._paused and self.transport is not None and not self.closed:
                self.transport.resume_reading()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def finished(self, exchange: Exchange) -> None:
        """``exchange`` is answered and its request read: count it, then the next request's turn."""
        if exchange is not self.exchange:
            return
        exchange.record()
        self.exchange = None
        self.resume("upstream")
        if exchange.close_after or not exchange.keep_alive or (self._eof and not self._queued):
            self.close()
            return
        if self._queued:
            self.exchange = self._queued.popleft()
            if not self._queued:
                self.resume("pipeline")
            if self.exchange.headers_done:
                self.exchange.start()
        else:
            self.idle_since = time.monotonic()

    def tunnel_to(self, exchange: Exchange, upstream: UpstreamConnection, rest: bytes) -> None:
        """The instance switched protocols: pass raw bytes both ways until either side closes."""
        exchange.record()
        self.exchange = None
        if self.transport is None or self.closed:
            upstream.close()
            return
        self.flush()
        self._tunnel = upstream
        upstream.tunnel = self.transport
        if rest:
            self.transport.write(rest)
        if self._upgrade_rest:
            upstream.write(self._upgrade_rest)
            self._upgrade_rest = b""
        self._paused.clear()
        self.transport.resume_reading()

    def stalled(self, now: float, head_timeout: float, idle_timeout: float) -> bool:
        """Whether the request being read has taken longer than ``head_timeout`` for its head, or
        its body has not grown for ``idle_timeout`` (seconds; ``now`` is monotonic time).

        Called by the ingress's sweep, which keeps what it saw last time, so a request pays nothing."""
        parsing = self._parsing
        if parsing is not self._seen_parsing:
            self._seen_parsing, self._seen_received, self._seen_at = parsing, self.received, now
            return False
        if parsing is None or self._paused or self._tunnel is not None:
            self._seen_at = now  # nothing is being read, or the ingress itself stopped reading
            return False
        if not parsing.headers_done:
            return now - self._seen_at >= head_timeout
        if self.received != self._seen_received:
            self._seen_received, self._seen_at = self.received, now
            return False
        return now - self._seen_at >= idle_timeout

    def time_out_request(self) -> None:
        """The request being read stalled: 408 if nothing was answered on it yet, else cut it."""
        self._refuse(408, "the request did not arrive in time")
        self.flush()

    def _refuse(self, status: int, why: str) -> None:
        if self.exchange is not None and self.exchange.response_started:
            self.abort()
            return
        answer = page(status, HTTPStatus(status).phrase, why)
        if self.exchange is not None:
            self.exchange.abandon()
        refusal = Exchange(self)
        refusal.keep_alive = False
        self.exchange = refusal
        refusal.request_done = True
        refusal.answer(answer)
