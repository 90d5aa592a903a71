"""Talking HTTP/1.1 to instances: a keep-alive connection pool and a streaming response reader.

The ingress sits in front of every request, so this path is kept small: idle connections are
kept per instance address and taken or returned in constant time, requests are written as raw
bytes, and responses are parsed with httptools (what uvicorn parses requests with) and streamed
back chunk by chunk. A connection is reused only when the response said it may be and was read
to its end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httptools

Address = tuple[str, int]
READ_SIZE = 64 * 1024
IDLE_PER_ADDRESS = 64


class UpstreamError(Exception):
    """The instance broke the exchange; ``sent`` tells whether any of the request reached it."""

    def __init__(self, message: str, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass
class _Parsed:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    headers_done: bool = False
    done: bool = False
    chunks: list[bytes] = field(default_factory=list)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class Connection:
    def __init__(self, address: Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.address = address
        self._reader = reader
        self._writer = writer
        self.reusable = False

    @property
    def closed(self) -> bool:
        return self._writer.is_closing() or self._reader.at_eof()

    def close(self) -> None:
        self._writer.close()

    async def request(self, head: bytes, body: AsyncIterator[bytes] | None, chunked: bool) -> None:
        """Write the request: ``head`` is the request line and headers, ``body`` is streamed."""
        self._writer.write(head)
        if body is not None:
            async for chunk in body:
                if not chunk:
                    continue
                self._writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                await self._writer.drain()
            if chunked:
                self._writer.write(b"0\r\n\r\n")
        await self._writer.drain()

    async def response(self, head_request: bool = False
                       ) -> tuple[int, list[tuple[bytes, bytes]], AsyncIterator[tuple[bytes, bool]]]:
        """Read the status and headers; the body comes as (chunk, last) pairs."""
        parsed = _Parsed()
        parser = httptools.HttpResponseParser(parsed)
        while not parsed.headers_done:
            data = await self._reader.read(READ_SIZE)
            if not data:
                raise UpstreamError("the instance closed the connection before answering", sent=True)
            try:
                parser.feed_data(data)
            except httptools.HttpParserError as exc:
                raise UpstreamError(f"the instance answered with malformed HTTP ({exc})", sent=True) from exc
        parsed.status = parser.get_status_code()
        if head_request or parsed.status in (204, 304) or 100 <= parsed.status < 200:
            # No body follows, whatever the headers say; the parser cannot know, so do not reuse.
            return parsed.status, parsed.headers, _nothing()
        return parsed.status, parsed.headers, self._body(parser, parsed)

    async def _body(self, parser: httptools.HttpResponseParser, parsed: _Parsed) -> AsyncIterator[tuple[bytes, bool]]:
        while True:
            if parsed.chunks or parsed.done:
                chunks, parsed.chunks = parsed.chunks or [b""], []
                for i, chunk in enumerate(chunks):
                    yield chunk, parsed.done and i == len(chunks) - 1
            if parsed.done:
                self.reusable = parser.should_keep_alive()
                return
            data = await self._reader.read(READ_SIZE)
            if not data:
                try:
                    parser.feed_data(b"")  # a body delimited by the end of the connection ends here
                except httptools.HttpParserError:
                    pass
                if not parsed.done:
                    parsed.done = True
                    self.reusable = False
                continue
            parser.feed_data(data)


async def _nothing() -> AsyncIterator[tuple[bytes, bool]]:
    yield b"", True


class UpstreamPool:
    """Idle keep-alive connections per instance address."""

    def __init__(self) -> None:
        self._idle: dict[Address, list[Connection]] = {}

    async def connect(self, address: Address, fresh: bool = False) -> tuple[Connection, bool]:
        """A connection to ``address`` and whether it was reused from the pool."""
        idle = self._idle.get(address)
        while idle and not fresh:
            connection = idle.pop()
            if not connection.closed:
                return connection, True
            connection.close()
        reader, writer = await asyncio.open_connection(*address)
        return Connection(address, reader, writer), False

    def release(self, connection: Connection) -> None:
        idle = self._idle.setdefault(connection.address, [])
        if connection.reusable and not connection.closed and len(idle) < IDLE_PER_ADDRESS:
            connection.reusable = False
            idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
