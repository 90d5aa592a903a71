"""Connections from the ingress to instances: HTTP/1.1 over keep-alive sockets, pooled per address.

Every request to every app crosses this path, so it is written as asyncio protocols with
callbacks (no task or future per request): the response is parsed with httptools as bytes
arrive and each piece is handed straight to the exchange that asked for it. A connection goes
back to the pool only when its response said it may be kept alive and was read to its end;
an idle connection the instance closes leaves the pool at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol, cast

import httptools

from shoal.core.aio import within

Address = tuple[str, int]
IDLE_PER_ADDRESS = 64
IDLE_SECONDS = 30.0  # a pooled connection unused this long is closed
CONNECT_SECONDS = 5.0


class Receiver(Protocol):
    """The exchange an upstream connection is answering (``shoal.ingress.exchange.Exchange``)."""

    request_done: bool  # all of the request was read from the client (and so sent on)

    def upstream_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None: ...
    def upstream_body(self, chunk: bytes) -> None: ...
    def upstream_done(self) -> None: ...
    def upstream_upgraded(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]],
                          rest: bytes) -> None: ...
    def upstream_failed(self, connection: Link, reason: str) -> None: ...
    def upstream_writable(self, writable: bool) -> None: ...
    def hold(self) -> None: ...  # answers written until release() go out in one send
    def release(self) -> None: ...


class Link(Protocol):
    """What carries one exchange to an instance: an HTTP/1.1 connection here, or an HTTP/2 stream
    (``shoal.ingress.h2c``). Both are written HTTP/1.1 request bytes."""

    reused: bool
    received: int  # answer bytes seen so far: none means the instance may not have acted on it

    @property
    def transport(self) -> asyncio.Transport | None: ...
    @property
    def closed(self) -> bool: ...
    def send(self, receiver: Receiver, data: bytes, head_request: bool) -> None: ...
    def write(self, data: bytes) -> None: ...
    def abandon(self) -> None: ...
    def close(self) -> None: ...
    def finish_close_delimited(self) -> bool: ...


class Pool(Protocol):
    def take(self, address: Address) -> Link | None: ...
    async def connect(self, address: Address) -> Link: ...
    def release(self, link: Link, reusable: bool) -> None: ...
    def sweep(self) -> None: ...
    def close(self) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    """One socket to one instance, answering one exchange at a time."""

    def __init__(self, pool: UpstreamPool, address: Address) -> None:
        self.pool = pool
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.receiver: Receiver | None = None
        self.reused = False
        self.received = 0  # response bytes seen for the current exchange
        self.idle_since = 0.0
        self.tunnel: asyncio.Transport | None = None  # after a 101: raw bytes go to the client
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._reason = b""
        self._head_request = False
        self._closed = False

    # -- the exchange's side ------------------------------------------------------------------

    def send(self, receiver: Receiver, data: bytes, head_request: bool) -> None:
        """Start answering ``receiver``: ``data`` is the request head (and any body at hand)."""
        self.receiver = receiver
        self.received = 0
        self._head_request = head_request
        assert self.transport is not None
        self.transport.write(data)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(data)

    def abandon(self) -> None:
        """The exchange is over before its response ended: this socket cannot be reused."""
        self.receiver = None
        self.close()

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- asyncio ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        if self.receiver is None:
            self.close()  # an idle connection that talks out of turn cannot be trusted
            return
        self.received += len(data)
        receiver = self.receiver
        receiver.hold()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            upgraded, self.receiver = self.receiver, None
            if upgraded is not None:
                upgraded.upstream_upgraded(self._parser.get_status_code(), self._reason, self._headers,
                                           data[upgrade.args[0]:])
        except httptools.HttpParserError as exc:
            self._fail(f"the instance answered with malformed HTTP ({exc})")
        receiver.release()

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.pool.forget(self)
        if self.tunnel is not None:
            self.tunnel.close()
            return
        self._fail("the instance closed the connection" + (f" ({exc})" if exc else ""))

    def pause_writing(self) -> None:
        if self.receiver is not None:
            self.receiver.upstream_writable(False)

    def resume_writing(self) -> None:
        if self.receiver is not None:
            self.receiver.upstream_writable(True)

    def _fail(self, reason: str) -> None:
        receiver, self.receiver = self.receiver, None
        self.close()
        if receiver is not None:
            receiver.upstream_failed(self, reason)

    # -- httptools ------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = []
        self._reason = b""

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if self.receiver is None or 100 <= status < 200:
            return  # interim answers (100 Continue) are the ingress's to give, not forwarded
        self.receiver.upstream_head(status, self._reason, self._headers)
        if self._head_request and self.receiver is not None:
            # No body follows a HEAD answer, whatever its headers say; the parser cannot know, so
            # the exchange ends here and the socket is not reused.
            receiver, self.receiver = self.receiver, None
            self.close()
            receiver.upstream_done()

    def on_body(self, body: bytes) -> None:
        if self.receiver is not None:
            self.receiver.upstream_body(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if self.receiver is None or (100 <= status < 200 and status != 101):
            return
        if status == 101:
            return  # the upgrade exception that follows hands the socket over
        receiver, self.receiver = self.receiver, None
        # Back to the pool first, so the client's next request can take this very connection.
        self.pool.release(self, self._parser.should_keep_alive() and receiver.request_done)
        receiver.upstream_done()

    def finish_close_delimited(self) -> bool:
        """Whether the answer in progress ends with the connection (no length, not chunked)."""
        return not any(k in (b"content-length", b"transfer-encoding") for k, _ in self._headers)


class UpstreamPool:
    """Idle keep-alive connections per instance address, taken and returned in constant time."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._idle: dict[Address, list[UpstreamConnection]] = {}
        self._now = now

    def take(self, address: Address) -> UpstreamConnection | None:
        idle = self._idle.get(address)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                connection.reused = True
                return connection
        return None

    async def connect(self, address: Address) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        _, connection = await within(
            loop.create_connection(lambda: UpstreamConnection(self, address), *address), CONNECT_SECONDS)
        return connection

    def release(self, connection: Link, reusable: bool) -> None:
        if not isinstance(connection, UpstreamConnection):
            return
        idle = self._idle.setdefault(connection.address, [])
        if reusable and not connection.closed and connection.tunnel is None and len(idle) < IDLE_PER_ADDRESS:
            connection.idle_since = self._now()
            idle.append(connection)
        else:
            connection.close()

    def forget(self, connection: UpstreamConnection) -> None:
        idle = self._idle.get(connection.address)
        if idle and connection in idle:
            idle.remove(connection)

    def sweep(self) -> None:
        """Close connections idle longer than ``IDLE_SECONDS``."""
        cutoff = self._now() - IDLE_SECONDS
        for address, idle in list(self._idle.items()):
            keep = [c for c in idle if c.idle_since >= cutoff and not c.closed]
            for connection in idle:
                if connection not in keep:
                    connection.close()
            if keep:
                self._idle[address] = keep
            else:
                del self._idle[address]

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
