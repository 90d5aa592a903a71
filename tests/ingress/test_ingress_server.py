"""The ingress in-process, on loopback sockets, in front of tiny instances written here: keep-alive,
retries, pipelining, framing, refusals and counting — the cases real apps rarely trigger on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from shoal.domain.routing import Route
from shoal.domain.traffic import TrafficMeter
from shoal.ingress.server import Bind, Ingress
from shoal.ingress.table import RouteTable, Upstream
from tests.runtime.aio import run_async

HOST = b"app.test"


class Instance:
    """An HTTP/1.1 instance: answers JSON about what it saw; some paths misbehave on purpose."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[dict[str, Any]] = []
        self.server: asyncio.Server | None = None
        self.handlers: set[asyncio.Task[Any]] = set()

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        return "127.0.0.1", self.server.sockets[0].getsockname()[1]

    async def start(self) -> Instance:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = line.split(" ")
                headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines if h)}
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                if headers.get("transfer-encoding") == "chunked":
                    while size := int((await reader.readline()).strip(), 16):
                        body += await reader.readexactly(size)
                        await reader.readline()
                    await reader.readline()
                self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
                if path == "/hang":
                    await asyncio.Event().wait()  # accepts the request, never answers
                if path == "/chunked-slowly":  # begins at once, takes its time over the body
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    for word in (b"one ", b"two ", b"three "):
                        writer.write(b"%x\r\n%b\r\n" % (len(word), word))
                        await writer.drain()
                        await asyncio.sleep(0.3)
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
                    continue
                if path == "/die":
                    writer.close()
                    return
                if path == "/until-close":
                    writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of this is the body")
                    await writer.drain()
                    writer.close()
                    return
                reply = json.dumps({"path": path, "method": method, "bytes": len(body),
                                    "xff": headers.get("x-forwarded-for"), "host": headers.get("host"),
                                    "proto": headers.get("x-forwarded-proto")}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: keep-alive\r\n\r\n%b" % (len(reply), b"" if method == "HEAD" else reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)


@contextlib.asynccontextmanager
async def ingress_for(addresses: list[tuple[str, int]], meter: TrafficMeter | None = None,
                      error_page: str | None = None, answer_timeout: float = 100.0,
                      table: RouteTable | None = None, **timeouts: float) -> AsyncIterator[tuple[str, int]]:
    if table is None:
        table = RouteTable()
        table.publish("app-1", [HOST.decode()], [Route("/", component="web")], {"web": Upstream(addresses)},
                      error_page=error_page)
    ingress = Ingress(table, meter, answer_timeout=answer_timeout, **timeouts)
    server = await ingress.listen(Bind("127.0.0.1", 0))
    stop = asyncio.Event()
    serving = asyncio.create_task(ingress.serve([server], stop, grace=0.5))
    try:
        yield "127.0.0.1", server.sockets[0].getsockname()[1]
    finally:
        stop.set()
        await serving


async def exchange(address: tuple[str, int], data: bytes, answers: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    """Send raw ``data`` on one connection and read ``answers`` responses."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(data)
    found = []
    try:
        for _ in range(answers):
            found.append(await read_response(reader))
    finally:
        writer.close()
    return found


async def read_response(reader: asyncio.StreamReader, head_request: bool = False) -> tuple[int, dict[str, str], bytes]:
    while True:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status = int(head.split(" ", 2)[1])
        if status != 100:
            break
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head.split("\r\n")[1:] if h)}
    if head_request:
        return status, headers, b""
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    body = b""
    if headers.get("transfer-encoding") == "chunked":
        while size := int((await reader.readline()).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readline()
        await reader.readline()
        return status, headers, body
    return status, headers, await reader.read()


def get(path: str, extra: bytes = b"", method: bytes = b"GET") -> bytes:
    return method + b" " + path.encode() + b" HTTP/1.1\r\nhost: " + HOST + b"\r\n" + extra + b"\r\n"


@run_async
async def test_keep_alive_on_both_sides_and_forwarded_headers() -> None:
    instance = await Instance().start()
    async with ingress_for([instance.address]) as ingress:
        answers = await exchange(ingress, b"".join(get(f"/n/{i}", b"x-forwarded-for: 10.0.0.9\r\n")
                                                 for i in range(5)), answers=5)
    await instance.stop()
    assert [json.loads(body)["path"] for _, _, body in answers] == [f"/n/{i}" for i in range(5)]  # in order
    assert instance.connections == 1  # pipelined requests, one instance connection kept alive
    seen = json.loads(answers[0][2])
    assert seen["xff"] == "10.0.0.9, 127.0.0.1" and seen["host"] == "app.test" and seen["proto"] == "http"


@run_async
async def test_a_refused_instance_is_skipped_for_any_method() -> None:
    dead = await Instance().start()
    dead_address = dead.address
    await dead.stop()
    alive = await Instance().start()
    async with ingress_for([dead_address, alive.address]) as ingress:
        for _ in range(2):  # round-robin puts the dead one first once
            (status, _, body), = await exchange(ingress, get("/x", b"content-length: 3\r\n", b"POST") + b"abc")
            assert status == 200 and json.loads(body)["bytes"] == 3
    await alive.stop()


@run_async
async def test_a_get_that_kills_every_instance_ends_in_502_after_one_try_each() -> None:
    first, second = await Instance().start(), await Instance().start()
    async with ingress_for([first.address, second.address]) as ingress:
        (status, _, body), = await exchange(ingress, get("/die"))
    await first.stop()
    await second.stop()
    assert status == 502 and b"web failed to answer" in body
    assert len(first.requests) == 1 and len(second.requests) == 1


@run_async
async def test_retries_and_their_limits() -> None:
    dying, healthy = await Instance().start(), await Instance().start()

    async def die_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()  # read the request, answered nothing

    assert dying.server is not None
    dying.server.close()
    await dying.server.wait_closed()
    dying.server = await asyncio.start_server(die_first, "127.0.0.1", 0)
    # (its handlers end on their own: they close the connection after one request)
    async with ingress_for([dying.address, healthy.address]) as ingress:
        get_answers = [await exchange(ingress, get("/g")) for _ in range(2)]
        post_answers = [await exchange(ingress, get("/p", b"content-length: 1\r\n", b"POST") + b"x")
                        for _ in range(2)]
    await dying.stop()
    await healthy.stop()
    assert [a[0][0] for a in get_answers] == [200, 200]  # a GET is retried on the healthy instance
    statuses = sorted(a[0][0] for a in post_answers)
    assert statuses == [200, 502]  # a POST the dying instance took is not sent twice
    failed = next(a[0] for a in post_answers if a[0][0] == 502)
    assert b"web failed to answer" in failed[2]


@run_async
async def test_no_instance_answering_gives_a_clear_502() -> None:
    gone = await Instance().start()
    address = gone.address
    await gone.stop()
    async with ingress_for([address]) as ingress:
        (status, headers, body), = await exchange(ingress, get("/"))
    assert status == 502 and headers["content-type"].startswith("text/html")
    assert b"no instance of web accepted the connection" in body


@run_async
async def test_an_instance_that_does_not_begin_to_answer_gets_a_504_and_others_go_on() -> None:
    meter = TrafficMeter()
    instance = await Instance().start()
    try:
        async with ingress_for([instance.address], meter, answer_timeout=0.4) as ingress:
            reader, writer = await asyncio.open_connection(*ingress)
            writer.write(get("/hang"))
            status, headers, body = await asyncio.wait_for(read_response(reader), 10)
            assert await reader.read() == b""  # and the connection is closed
            writer.close()
            (fine, _, _), = await exchange(ingress, get("/after"))
    finally:
        await instance.stop()
    assert status == 504 and headers["connection"] == "close"
    assert b"web did not begin to answer within 0.4 s" in body
    assert fine == 200
    components = meter.take().components
    assert sum(c.errors for c in components.values()) == 1 and sum(c.requests for c in components.values()) == 2


@run_async
async def test_an_answer_that_has_begun_is_not_timed_out_however_long_it_streams() -> None:
    instance = await Instance().start()
    try:
        async with ingress_for([instance.address], answer_timeout=0.4) as ingress:
            (status, _, body), = await exchange(ingress, get("/chunked-slowly"))
    finally:
        await instance.stop()
    assert status == 200 and body == b"one two three "


@run_async
async def test_the_apps_custom_error_page_replaces_the_ingress_page() -> None:
    gone = await Instance().start()
    address = gone.address
    await gone.stop()
    async with ingress_for([address], error_page="<h1>Our own outage page</h1>") as ingress:
        (status, headers, body), = await exchange(ingress, get("/"))
    assert status == 502 and body == b"<h1>Our own outage page</h1>"


@run_async
async def test_head_chunked_and_close_delimited_answers() -> None:
    instance = await Instance().start()
    async with ingress_for([instance.address]) as ingress:
        reader, writer = await asyncio.open_connection(*ingress)
        writer.write(get("/h", method=b"HEAD"))
        status, headers, _ = await read_response(reader, head_request=True)
        assert status == 200 and int(headers["content-length"]) > 0
        writer.write(get("/after-head"))  # the same client connection goes on after a HEAD
        status, _, body = await read_response(reader)
        assert status == 200 and json.loads(body)["path"] == "/after-head"
        writer.write(get("/until-close"))  # no length: the ingress re-frames it as chunked
        status, headers, body = await read_response(reader)
        assert headers.get("transfer-encoding") == "chunked" and body == b"all of this is the body"
        writer.write(get("/still-open"))
        status, _, body = await read_response(reader)
        assert json.loads(body)["path"] == "/still-open"
        writer.close()
        body_sent = b"0123456789" * 1000
        chunked = b"".join(b"%x\r\n%b\r\n" % (len(body_sent[i:i + 777]), body_sent[i:i + 777])
                           for i in range(0, len(body_sent), 777)) + b"0\r\n\r\n"
        (status, _, body), = await exchange(ingress, get("/up", b"transfer-encoding: chunked\r\n"
                                                         b"expect: 100-continue\r\n", b"PUT") + chunked)
        assert status == 200 and json.loads(body)["bytes"] == len(body_sent)
    await instance.stop()


@run_async
async def test_bad_requests_are_refused_with_a_page() -> None:
    instance = await Instance().start()
    async with ingress_for([instance.address]) as ingress:
        (status, _, body), = await exchange(ingress, b"NOT HTTP AT ALL\r\n\r\n")
        assert status == 400 and b"malformed HTTP request" in body
        (status, _, _), = await exchange(ingress, get("/", b"x-big: " + b"a" * 70_000 + b"\r\n"))
        assert status == 431
        (status, _, body), = await exchange(ingress, b"GET / HTTP/1.1\r\nhost: other.test\r\n\r\n")
        assert status == 404 and b"No app is live at other.test" in body
    await instance.stop()
    assert instance.requests == []  # none of these reached the app


@run_async
async def test_every_answer_is_counted_against_its_app() -> None:
    instance = await Instance().start()
    meter = TrafficMeter()
    async with ingress_for([instance.address], meter) as ingress:
        answers = await exchange(ingress, get("/a") + get("/b"), answers=2)
        await exchange(ingress, b"GET / HTTP/1.1\r\nhost: nobody.test\r\n\r\n")  # no app: not counted
    await instance.stop()
    counts = meter.take()
    today = datetime.now(UTC).date()
    sent = sum(len(body) for _, _, body in answers)
    assert set(counts.bandwidth) == {("app-1", today)}
    assert sent < counts.bandwidth["app-1", today] < sent + 1024
    web = counts.components["app-1", "web", today]
    assert web.requests == 2 and web.errors == 0 and web.seconds > 0


@run_async
async def test_a_new_route_table_applies_to_urls_seen_before() -> None:
    old, new = await Instance().start(), await Instance().start()
    table = RouteTable()
    table.publish("app-1", [HOST.decode()], [Route("/", component="web")], {"web": Upstream([old.address])})
    ingress = Ingress(table)
    server = await ingress.listen(Bind("127.0.0.1", 0))
    address = ("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        await exchange(address, get("/same"))
        table.publish("app-1", [HOST.decode()], [Route("/", component="web")], {"web": Upstream([new.address])})
        await exchange(address, get("/same"))
        table.withdraw("app-1")
        (status, _, _), = await exchange(address, get("/same"))
    finally:
        server.close()
        await ingress.drain(0.5)
        await old.stop()
        await new.stop()
    assert [r["path"] for r in old.requests] == ["/same"] and [r["path"] for r in new.requests] == ["/same"]
    assert status == 404
