"""Health probes against real sockets: DigitalOcean's defaults, HTTP and TCP checks, verdict streaks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from shoal.runtime.local.health import Probe, Streak, probe_once, watch
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


def test_readiness_defaults_follow_digitalocean() -> None:
    probe = Probe.from_spec(None, 8080)
    assert probe == Probe(port=8080, http_path=None, initial_delay_seconds=0, period_seconds=10,
                          timeout_seconds=1, success_threshold=1, failure_threshold=9)


def test_liveness_defaults_follow_digitalocean() -> None:
    probe = Probe.from_spec({"http_path": "/live"}, 8080, liveness=True)
    assert probe == Probe(port=8080, http_path="/live", initial_delay_seconds=5, period_seconds=10,
                          timeout_seconds=1, success_threshold=1, failure_threshold=18)


def test_spec_fields_override_defaults() -> None:
    spec = {"http_path": "/health", "port": 9000, "initial_delay_seconds": 3, "period_seconds": 2,
            "timeout_seconds": 4, "success_threshold": 2, "failure_threshold": 5}
    assert Probe.from_spec(spec, 8080) == Probe(9000, "/health", 3, 2, 4, 2, 5)


def test_liveness_success_threshold_is_always_one() -> None:
    assert Probe.from_spec({"success_threshold": 3}, 80, liveness=True).success_threshold == 1


def test_empty_http_path_means_tcp() -> None:
    assert Probe.from_spec({"http_path": ""}, 80).http_path is None


def test_scaled_divides_durations() -> None:
    probe = Probe(80, initial_delay_seconds=5, period_seconds=10, timeout_seconds=1).scaled(10)
    assert (probe.initial_delay_seconds, probe.period_seconds, probe.timeout_seconds) == (0.5, 1, 0.1)


@pytest.mark.parametrize("bad", [{"port": 0}, {"period_seconds": 0}, {"failure_threshold": 0},
                                 {"initial_delay_seconds": -1}])
def test_nonsense_probes_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Probe(**{"port": 80, **bad})


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
