"""Health probes against real sockets: DigitalOcean's defaults, HTTP and TCP checks, verdict streaks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from shoal.domain.plan import Probe
from shoal.runtime.local.health import Streak, probe_once, watch
from tests.live import free_port
from tests.runtime.aio import run_async


async def serve(reply: bytes | None) -> asyncio.Server:
    """A local server that answers every connection with ``reply`` (None: never answers)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if reply is None:
            await reader.read()  # hold the connection open until the client gives up
        else:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def with_server(reply: bytes | None, check: Callable[[int], Awaitable[None]]) -> None:
    server = await serve(reply)
    async with server:
        await check(port_of(server))


def test_streak_needs_consecutive_results() -> None:
    streak = Streak(success_threshold=2, failure_threshold=3)
    assert [streak.record(ok) for ok in (True, False, True, True, True)] == [None, None, None, True, None]
    assert [streak.record(ok) for ok in (False, False, True, False, False, False)] == [
        None, None, None, None, None, False]


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (204, True), (302, True), (404, False), (503, False)])
@run_async
async def test_http_probe_judges_by_status(status: int, healthy: bool) -> None:
    reply = f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode()

    async def check(port: int) -> None:
        assert await probe_once(Probe(port, "/health")) is healthy

    await with_server(reply, check)


@run_async
async def test_http_probe_sends_the_path() -> None:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n"))
        writer.write(b"HTTP/1.0 200 OK\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        assert await probe_once(Probe(port_of(server), "healthz"))
    assert seen == [b"GET /healthz HTTP/1.1\r\n"]


@run_async
async def test_http_probe_times_out_on_a_silent_server() -> None:
    async def check(port: int) -> None:
        started = time.monotonic()
        assert not await probe_once(Probe(port, "/health", timeout_seconds=0.2))
        assert time.monotonic() - started < 2

    await with_server(None, check)


@run_async
async def test_garbage_reply_is_unhealthy() -> None:
    async def check(port: int) -> None:
        assert not await probe_once(Probe(port, "/"))

    await with_server(b"SSH-2.0-OpenSSH\r\n\r\n", check)


@run_async
async def test_tcp_probe_connects() -> None:
    async def check(port: int) -> None:
        assert await probe_once(Probe(port))

    await with_server(None, check)
    assert not await probe_once(Probe(free_port()))


@run_async
async def test_watch_reports_verdict_changes() -> None:
    verdicts: list[bool] = []
    server = await serve(b"HTTP/1.1 200 OK\r\n\r\n")
    port = port_of(server)
    probe = Probe(port, "/", period_seconds=0.05, timeout_seconds=0.5, success_threshold=2, failure_threshold=2)
    task = asyncio.create_task(watch(probe, verdicts.append))
    try:
        while verdicts != [True]:
            await asyncio.sleep(0.02)
        server.close()
        await server.wait_closed()
        while verdicts != [True, False]:
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
