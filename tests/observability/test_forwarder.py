"""The forwarder against real receivers on loopback: each destination's protocol, a receiver down and
back, the bound, and receivers refusing lines."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shoal.domain.forwarding import Destination, Record
from shoal.observability import Forwarder, SenderFactory
from shoal.observability.outbox import Backoff
from tests.receivers import HttpReceiver, Request, SyslogReceiver, ReceiverCa, bulk_ok, ok

APP = "00000000-0000-4000-8000-000000000001"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ReceiverCa:
    return ReceiverCa(tmp_path_factory.mktemp("ca"))


def _records(count: int, prefix: str = "line", deployment: str = "dep-1") -> list[Record]:
    now = datetime.now(UTC)
    return [Record(APP, "shop", deployment, "web", "RUN", now, f"{prefix} {i}") for i in range(count)]


def _forwarder(ca: ReceiverCa, **kwargs: Any) -> Forwarder:
    from shoal.observability.tls import ClientContexts

    fast = kwargs.pop("backoff", lambda: Backoff(initial=0.05, cap=0.2))
    return Forwarder(SenderFactory(ClientContexts(ca.ca_path), kwargs.pop("logtail", "https://unused")),
                     backoff=fast, **kwargs)


async def _until(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s")
        await asyncio.sleep(0.02)
    return value


def _drive(forwarder: Forwarder, body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(forwarder.run(stop))
        try:
            await body()
        finally:
            stop.set()
            await runner

    asyncio.run(main())


def test_papertrail_gets_rfc5424_lines_over_tls_trusting_the_operators_ca(ca: ReceiverCa) -> None:
    receiver = SyslogReceiver(ca.server_context()).start()
    try:
        dest = Destination(APP, "web", "pt", "papertrail", endpoint=f"syslog+tls://127.0.0.1:{receiver.port}")
        forwarder = _forwarder(ca)

        async def body() -> None:
            forwarder.forward(dest, _records(3))
            await _until(lambda: len(receiver.lines) >= 3)

        _drive(forwarder, body)
        assert all(re.fullmatch(r"<14>1 \S+Z shop web dep-1 RUN - line \d", line) for line in receiver.lines), \
            receiver.lines
        assert [line.rsplit(" ", 1)[1] for line in receiver.lines] == ["0", "1", "2"]
    finally:
        receiver.stop()


def test_a_destination_whose_certificate_is_not_trusted_says_so(tmp_path: Path, ca: ReceiverCa) -> None:
    stranger = ReceiverCa(tmp_path / "other")
    receiver = SyslogReceiver(stranger.server_context()).start()
    try:
        dest = Destination(APP, "web", "pt", "papertrail", endpoint=f"127.0.0.1:{receiver.port}")
        forwarder = _forwarder(ca, limit=2)

        async def body() -> None:
            forwarder.forward(dest, _records(1))
            await asyncio.sleep(0.5)
            forwarder.forward(dest, _records(4))
            (dropped,) = forwarder.dropped()
            assert dropped.count == 3 and "not trusted" in dropped.reason

        _drive(forwarder, body)
        assert receiver.lines == []
    finally:
        receiver.stop()


def test_tls_insecure_skips_the_certificate_check(tmp_path: Path, ca: ReceiverCa) -> None:
    stranger = ReceiverCa(tmp_path / "other")
    receiver = SyslogReceiver(stranger.server_context()).start()
    try:
        dest = Destination(APP, "web", "pt", "papertrail", endpoint=f"127.0.0.1:{receiver.port}", tls_insecure=True)
        forwarder = _forwarder(ca)

        async def body() -> None:
            forwarder.forward(dest, _records(2))
            await _until(lambda: len(receiver.lines) == 2)

        _drive(forwarder, body)
    finally:
        receiver.stop()


def test_datadog_gets_its_key_header_and_a_gzipped_json_array(ca: ReceiverCa) -> None:
    receiver = HttpReceiver(ca.server_context()).start()
    try:
        dest = Destination(APP, "web", "dd", "datadog", endpoint=receiver.url, api_key="dd-key",
                           headers=(("X-Extra", "1"),))
        forwarder = _forwarder(ca)

        async def body() -> None:
            forwarder.forward(dest, _records(3))
            await _until(lambda: len(receiver.messages()) == 3)

        _drive(forwarder, body)
        request = receiver.received()[0]
        assert request.path == "/api/v2/logs"
        assert request.headers["dd-api-key"] == "dd-key" and request.headers["content-encoding"] == "gzip"
        assert request.headers["content-type"] == "application/json" and request.headers["x-extra"] == "1"
        entry = request.json()[0]
        assert {k: entry[k] for k in ("message", "ddsource", "service", "hostname")} == {
            "message": "line 0", "ddsource": "shoal", "service": "web", "hostname": "shop"}
    finally:
        receiver.stop()


def test_logtail_gets_a_bearer_token_at_the_operators_endpoint(ca: ReceiverCa) -> None:
    receiver = HttpReceiver(ca.server_context()).start()
    try:
        dest = Destination(APP, "web", "lt", "logtail", token="lt-token")
        forwarder = _forwarder(ca, logtail=f"{receiver.url}/ingest")

        async def body() -> None:
            forwarder.forward(dest, _records(2))
            await _until(lambda: len(receiver.messages()) == 2)

        _drive(forwarder, body)
        request = receiver.received()[0]
        assert request.path == "/ingest" and request.headers["authorization"] == "Bearer lt-token"
        assert [e["message"] for e in request.json()] == ["line 0", "line 1"] and "dt" in request.json()[0]
    finally:
        receiver.stop()


def test_opensearch_gets_bulk_ndjson_with_basic_auth_into_its_index(ca: ReceiverCa) -> None:
    receiver = HttpReceiver(ca.server_context(), respond=bulk_ok).start()
    try:
        dest = Destination(APP, "web", "os", "open_search", endpoint=receiver.url, user="elastic",
                           password="pw", index="shop-logs")
        forwarder = _forwarder(ca)

        async def body() -> None:
            forwarder.forward(dest, _records(3))
            await _until(lambda: len(receiver.bulk_documents()) == 3)

        _drive(forwarder, body)
        request = receiver.received()[0]
        assert request.path == "/_bulk" and request.headers["content-type"] == "application/x-ndjson"
        assert request.headers["authorization"] == "Basic ZWxhc3RpYzpwdw=="  # elastic:pw
        assert request.body.endswith(b"\n")
        assert json.loads(request.body.splitlines()[0]) == {"index": {"_index": "shop-logs"}}
        assert [d["message"] for d in receiver.bulk_documents()] == ["line 0", "line 1", "line 2"]
    finally:
        receiver.stop()


def test_opensearch_items_refused_for_load_are_sent_again_and_bad_ones_counted(ca: ReceiverCa) -> None:
    calls: list[int] = []

    def partly(request: Request) -> tuple[int, bytes]:
        calls.append(1)
        if len(calls) > 1:
            return bulk_ok(request)
        items = [{"index": {"status": 201}}, {"index": {"status": 429, "error": {"type": "busy"}}},
                 {"index": {"status": 400, "error": {"type": "mapper_parsing_exception"}}}]
        return 200, json.dumps({"errors": True, "items": items}).encode()

    receiver = HttpReceiver(ca.server_context(), respond=partly).start()
    try:
        dest = Destination(APP, "web", "os", "open_search", endpoint=receiver.url)
        forwarder = _forwarder(ca)

        async def body() -> None:
            forwarder.forward(dest, _records(3))
            await _until(lambda: len(receiver.received()) == 2)

        _drive(forwarder, body)
        resent = receiver.received()[1].body.decode().splitlines()
        assert [json.loads(x)["message"] for x in resent[1::2]] == ["line 1"]
        (dropped,) = forwarder.dropped()
        assert dropped.count == 1 and "mapper_parsing_exception" in dropped.reason
    finally:
        receiver.stop()


def test_a_generic_endpoint_gets_a_json_array_with_its_headers(ca: ReceiverCa) -> None:
    receiver = HttpReceiver(ca.server_context()).start()
    try:
        dest = Destination(APP, "web", "hook", "endpoint", endpoint=f"{receiver.url}/logs",
                           headers=(("Authorization", "Token abc"),))
        forwarder = _forwarder(ca)

        async def body() -> None:
            forwarder.forward(dest, _records(2))
            await _until(lambda: len(receiver.messages()) == 2)

        _drive(forwarder, body)
        request = receiver.received()[0]
        assert request.path == "/logs" and request.headers["authorization"] == "Token abc"
        assert request.json()[0]["component"] == "web"
    finally:
        receiver.stop()


@pytest.mark.parametrize("kind", ["papertrail", "datadog"])
def test_a_receiver_down_for_a_while_gets_the_lines_when_it_is_back(ca: ReceiverCa, kind: str) -> None:
    receiver: SyslogReceiver | HttpReceiver = SyslogReceiver(ca.server_context()) if kind == "papertrail" \
        else HttpReceiver(ca.server_context())
    receiver.start()
    endpoint = f"127.0.0.1:{receiver.port}" if kind == "papertrail" else f"https://127.0.0.1:{receiver.port}"
    dest = Destination(APP, "web", "d", kind, endpoint=endpoint, api_key="k")
    forwarder = _forwarder(ca)

    def arrived() -> list[str]:
        if isinstance(receiver, SyslogReceiver):
            return [line.rsplit(" - ", 1)[1] for line in receiver.lines]
        return receiver.messages()

    async def body() -> None:
        forwarder.forward(dest, _records(2, "before"))
        await _until(lambda: len(arrived()) == 2)
        await asyncio.to_thread(receiver.stop)
        await asyncio.sleep(0.3)
        for i in range(5):
            forwarder.forward(dest, _records(1, f"while-down-{i}"))
            await asyncio.sleep(0.1)
        await asyncio.to_thread(receiver.start)
        await _until(lambda: len(arrived()) >= 7)

    try:
        _drive(forwarder, body)
    finally:
        receiver.stop()
    assert arrived() == ["before 0", "before 1", *[f"while-down-{i} 0" for i in range(5)]]
    assert forwarder.dropped() == []


def test_a_dead_destination_keeps_at_most_its_bound_and_counts_the_rest(ca: ReceiverCa) -> None:
    receiver = HttpReceiver(ca.server_context())  # never started: connections are refused
    dest = Destination(APP, "web", "dd", "datadog", endpoint=receiver.url, api_key="k")
    forwarder = _forwarder(ca, limit=100)

    async def body() -> None:
        forwarder.forward(dest, _records(150, deployment="dep-1"))
        forwarder.forward(dest, _records(100, deployment="dep-2"))
        await asyncio.sleep(0.3)
        assert forwarder.queued() == 100
        (dropped,) = forwarder.dropped()
        assert (dropped.deployment_id, dropped.count) == ("dep-1", 150) and "at most 100" in dropped.reason
        assert forwarder.dropped() == []  # each drop is reported once

    _drive(forwarder, body)
    (stopped,) = forwarder.dropped()  # what was still queued when shoal stopped is counted too
    assert (stopped.deployment_id, stopped.count) == ("dep-2", 100) and "shoal stopped" in stopped.reason


def test_a_receiver_refusing_the_key_drops_the_lines_with_its_answer(ca: ReceiverCa) -> None:
    receiver = HttpReceiver(ca.server_context(), respond=lambda r: (403, b'{"errors":["Forbidden"]}')).start()
    try:
        dest = Destination(APP, "web", "dd", "datadog", endpoint=receiver.url, api_key="wrong")
        forwarder = _forwarder(ca)

        async def body() -> None:
            forwarder.forward(dest, _records(4))
            await _until(lambda: len(receiver.received()) == 1)
            await asyncio.sleep(0.2)

        _drive(forwarder, body)
        (dropped,) = forwarder.dropped()
        assert dropped.count == 4 and "403" in dropped.reason and len(receiver.received()) == 1
    finally:
        receiver.stop()


def test_a_papertrail_endpoint_without_a_port_drops_with_the_reason(ca: ReceiverCa) -> None:
    dest = Destination(APP, "web", "pt", "papertrail", endpoint="https://mypapertrailendpoint.com")
    forwarder = _forwarder(ca)

    async def body() -> None:
        forwarder.forward(dest, _records(2))
        await asyncio.sleep(0.2)

    _drive(forwarder, body)
    (dropped,) = forwarder.dropped()
    assert dropped.count == 2 and "host and port" in dropped.reason


def test_a_slow_destination_does_not_hold_up_another(ca: ReceiverCa) -> None:
    import time

    def slow(request: Request) -> tuple[int, bytes]:
        time.sleep(3)
        return ok(request)

    slow_receiver = HttpReceiver(ca.server_context(), respond=slow).start()
    fast_receiver = HttpReceiver(ca.server_context()).start()
    try:
        forwarder = _forwarder(ca)
        slow_dest = Destination(APP, "web", "slow", "datadog", endpoint=slow_receiver.url, api_key="k")
        fast_dest = Destination(APP, "web", "fast", "datadog", endpoint=fast_receiver.url, api_key="k")

        async def body() -> None:
            loop = asyncio.get_running_loop()
            started = loop.time()
            forwarder.forward(slow_dest, _records(1))
            forwarder.forward(fast_dest, _records(1))
            await _until(lambda: fast_receiver.messages())
            assert loop.time() - started < 2.5
            await _until(lambda: slow_receiver.messages())

        _drive(forwarder, body)
    finally:
        slow_receiver.stop()
        fast_receiver.stop()


def _unused(_: ssl.SSLContext) -> None:
    return None


class _SwallowsCancellation:
    """A sender whose library eats a cancellation and reports a failure instead (Python 3.11's
    wait_for does so when a connection attempt ends at the moment it is cancelled)."""

    def __init__(self) -> None:
        self.attempts = 0
        self.swallow = True

    async def send(self, records: list[Record]) -> Any:
        from shoal.domain.ports import DeliveryFailed

        self.attempts += 1
        try:
            await asyncio.Event().wait()  # a connection attempt that hangs until shoal gives up on it
        except asyncio.CancelledError:
            if not self.swallow:
                raise
        raise DeliveryFailed("cannot connect")

    async def close(self) -> None:
        return None


def test_shoal_stops_even_when_a_failing_destination_s_sender_swallows_the_cancellation() -> None:
    sender = _SwallowsCancellation()
    forwarder = Forwarder(lambda dest: sender, backoff=lambda: Backoff(initial=0.01, cap=0.02))
    dest = Destination(APP, "web", "pt", "papertrail", endpoint="127.0.0.1:9")

    async def main() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(forwarder.run(stop))
        forwarder.forward(dest, _records(2))
        await _until(lambda: sender.attempts)
        stop.set()
        try:
            async with asyncio.timeout(30):
                await asyncio.shield(runner)
        except TimeoutError:
            sender.swallow = False  # so that this test's own clean-up can end the lane
            runner.cancel()
            raise AssertionError("the forwarder did not stop within 30 s of being told to") from None

    asyncio.run(main())
    (dropped,) = forwarder.dropped()
    assert dropped.count == 2 and "shoal stopped" in dropped.reason
