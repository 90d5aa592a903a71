"""HTTP/2 over cleartext (h2c, prior knowledge) to services whose spec says ``protocol: HTTP2``.

Role: carry exchanges to such instances with the ``h2`` library, one connection per instance
address and one stream per request, with HTTP/2 flow control both ways. It must not decide
routes or shape answers: each stream looks to its exchange like an HTTP/1.1 upstream
connection (``send``/``write`` take HTTP/1.1 request bytes, which a parser turns into HTTP/2
frames), so the exchange, retries and counting stay the same for both protocols.
"""

from __future__ import annotations

import asyncio
from typing import cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import httptools

from shoal.core.aio import within
from shoal.ingress.upstream import CONNECT_SECONDS, Address, Link, Receiver

# Request headers HTTP/2 forbids (RFC 9113 §8.2.2); Host becomes :authority.
_CONNECTION_SPECIFIC = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                                  b"upgrade", b"te", b"host"})
BACKLOG = 256 * 1024  # request bytes waiting for the instance's window before the client is paused


class H2Stream:
    """One request on an HTTP/2 connection, fed HTTP/1.1 request bytes by its exchange."""

    reused = False
    tunnel = None

    def __init__(self, session: H2Session) -> None:
        self.session = session
        self.receiver: Receiver | None = None
        self.stream_id = 0
        self.received = 0
        self.ended = False  # the request body is complete
        self.pending: list[bytes] = []
        self.pending_size = 0
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._closed = False

    @property
    def transport(self) -> asyncio.Transport | None:
        return self.session.transport

    @property
    def closed(self) -> bool:
        return self._closed or self.session.closed

    def send(self, receiver: Receiver, data: bytes, head_request: bool) -> None:
        self.receiver = receiver
        self.write(data)

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.session.fail(self, f"the request could not be turned into HTTP/2 ({exc})")
        self.session.flush()

    def abandon(self) -> None:
        self.receiver = None
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.session.reset(self)

    def finish_close_delimited(self) -> bool:
        return False  # an HTTP/2 stream always says where it ends

    # -- httptools, on the request the exchange wrote ---------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        authority = next((v for k, v in self._headers if k == b"host"), b"")
        headers = [(b":method", self._parser.get_method()), (b":scheme", b"http"), (b":authority", authority),
                   (b":path", self._url), *((k, v) for k, v in self._headers if k not in _CONNECTION_SPECIFIC)]
        self.session.open(self, headers)

    def on_body(self, body: bytes) -> None:
        self.pending.append(body)
        self.pending_size += len(body)

    def on_message_complete(self) -> None:
        self.ended = True


class H2Session(asyncio.Protocol):
    """One HTTP/2 connection to one instance, carrying many streams at once."""

    def __init__(self, pool: H2Pool, address: Address) -> None:
        self.pool = pool
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.streams: dict[int, H2Stream] = {}
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))

    # -- streams -------------------------------------------------------------------------------------

    def open(self, stream: H2Stream, headers: list[tuple[bytes, bytes]]) -> None:
        stream.stream_id = self._h2.get_next_available_stream_id()
        self.streams[stream.stream_id] = stream
        self._h2.send_headers(stream.stream_id, headers)

    def flush(self) -> None:
        """Send what the streams have, as far as the instance's windows allow."""
        if self.closed:
            return
        for stream in list(self.streams.values()):
            self._pump(stream)
        if self.transport is not None:
            data = self._h2.data_to_send()
            if data:
                self.transport.write(data)

    def _pump(self, stream: H2Stream) -> None:
        if not stream.stream_id or stream.receiver is None:
            return
        was_backlogged = stream.pending_size > BACKLOG
        while stream.pending:
            window = min(self._h2.local_flow_control_window(stream.stream_id), self._h2.max_outbound_frame_size)
            if window <= 0:
                break
            chunk = stream.pending[0]
            piece, rest = chunk[:window], chunk[window:]
            self._h2.send_data(stream.stream_id, piece)
            stream.pending_size -= len(piece)
            if rest:
                stream.pending[0] = rest
            else:
                stream.pending.pop(0)
        if stream.ended and not stream.pending:
            stream.ended = False  # sent: do not end it twice
            self._h2.end_stream(stream.stream_id)
        backlogged = stream.pending_size > BACKLOG
        if stream.receiver is not None and backlogged != was_backlogged:
            stream.receiver.upstream_writable(not backlogged)

    def reset(self, stream: H2Stream) -> None:
        if self.streams.pop(stream.stream_id, None) is not None and not self.closed:
            try:
                self._h2.reset_stream(stream.stream_id, h2.errors.ErrorCodes.CANCEL)
            except h2.exceptions.H2Error:
                pass  # already closed on the instance's side
            self.flush()

    def fail(self, stream: H2Stream, reason: str) -> None:
        receiver, stream.receiver = stream.receiver, None
        stream.close()
        if receiver is not None:
            receiver.upstream_failed(stream, reason)

    # -- asyncio -----------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._h2.initiate_connection()
        # Room for the instance to stream large answers without waiting on every 64 KiB.
        self._h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
        self._h2.increment_flow_control_window((1 << 24) - 65535)
        self.transport.write(self._h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail_all(f"the instance broke HTTP/2 ({exc})")
            return
        held = [s.receiver for s in self.streams.values() if s.receiver is not None]
        for receiver in held:
            receiver.hold()
        for event in events:
            self._handle(event)
        self.flush()
        for receiver in held:
            receiver.release()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        self._fail_all("the instance closed the connection" + (f" ({exc})" if exc else ""))

    def _fail_all(self, reason: str) -> None:
        self.closed = True
        self.pool.forget(self)
        for stream in list(self.streams.values()):
            self.fail(stream, reason)
        self.streams.clear()
        if self.transport is not None:
            self.transport.close()

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged | h2.events.WindowUpdated):
            return  # flush() after the batch sends what the new windows allow
        if isinstance(event, h2.events.ConnectionTerminated):
            self._fail_all(f"the instance ended the HTTP/2 connection (error {event.error_code})")
            return
        stream_id = getattr(event, "stream_id", 0)
        stream = self.streams.get(stream_id)
        receiver = stream.receiver if stream is not None else None
        if stream is None or receiver is None:
            return
        if isinstance(event, h2.events.ResponseReceived):
            headers = [(bytes(k), bytes(v)) for k, v in event.headers or []]
            status = int(next((v for k, v in headers if k == b":status"), b"502"))
            if 100 <= status < 200:
                return
            stream.received += 1
            receiver.upstream_head(status, b"", [(k, v) for k, v in headers if not k.startswith(b":")])
        elif isinstance(event, h2.events.DataReceived):
            stream.received += len(event.data or b"")
            receiver.upstream_body(event.data or b"")
            self._h2.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.streams.pop(stream_id, None)
            stream.receiver = None
            stream._closed = True
            receiver.upstream_done()
        elif isinstance(event, h2.events.StreamReset):
            self.streams.pop(stream_id, None)
            self.fail(stream, f"the instance reset the stream (error {event.error_code})")


class H2Pool:
    """One HTTP/2 connection per instance address, shared by every request to it."""

    def __init__(self) -> None:
        self._sessions: dict[Address, H2Session] = {}

    def take(self, address: Address) -> H2Stream | None:
        session = self._sessions.get(address)
        if session is None or session.closed:
            return None
        stream = H2Stream(session)
        stream.reused = True
        return stream

    async def connect(self, address: Address) -> H2Stream:
        loop = asyncio.get_running_loop()
        _, session = await within(
            loop.create_connection(lambda: H2Session(self, address), *address), CONNECT_SECONDS)
        current = self._sessions.get(address)
        if current is not None and not current.closed and session.transport is not None:
            session.transport.close()  # another request connected first: share its connection
            session = current
        self._sessions[address] = session
        return H2Stream(session)

    def release(self, link: Link, reusable: bool) -> None:
        if isinstance(link, H2Stream):
            link.close()

    def forget(self, session: H2Session) -> None:
        if self._sessions.get(session.address) is session:
            del self._sessions[session.address]

    def sweep(self) -> None:
        pass  # sessions stay open while the instance keeps them; it closes them when it goes

    def close(self) -> None:
        for session in self._sessions.values():
            if session.transport is not None:
                session.transport.close()
        self._sessions.clear()
