"""The ingress against clients that misbehave on purpose: two Host headers, requests abandoned half
way (hundreds of them, counting the process's open descriptors), heads sent a byte at a time, and
bodies that stop arriving. In-process, on loopback sockets, in front of the test instance.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import time

from shoal.domain.routing import Route
from shoal.ingress.table import RouteTable, Upstream
from tests.runtime.aio import run_async
from tests.ingress.test_ingress_server import HOST, Instance, exchange, get, ingress_for, read_response

ABORTED = 300


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled(baseline: int, timeout: float = 10.0) -> int:
    """The number of open descriptors once it is back to ``baseline`` (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while (count := open_descriptors()) > baseline and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return count


async def abandon(address: tuple[str, int], data: bytes, reset: bool = False) -> None:
    """Send ``data`` and go away: a FIN after it, or with ``reset`` an RST."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(data)
    await writer.drain()
    if reset:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
    await writer.wait_closed()


@run_async
async def test_two_host_headers_are_refused_instead_of_routed_by_either() -> None:
    mine, theirs = await Instance().start(), await Instance().start()
    table = RouteTable()
    table.publish("app-mine", ["mine.test"], [Route("/", component="web")], {"web": Upstream([mine.address])})
    table.publish("app-theirs", ["theirs.test"], [Route("/", component="web")], {"web": Upstream([theirs.address])})
    async with ingress_for([], table=table) as ingress:
        for hosts in ((b"mine.test", b"theirs.test"), (b"theirs.test", b"mine.test"), (b"mine.test", b"mine.test")):
            request = b"GET /x HTTP/1.1\r\nhost: %b\r\nHost: %b\r\n\r\n" % hosts
            (status, headers, body), = await exchange(ingress, request)
            assert status == 400 and b"more than one Host header" in body and headers["connection"] == "close"
        (status, _, body), = await exchange(ingress, b"GET /x HTTP/1.1\r\nhost: theirs.test\r\n\r\n")
        assert status == 200
    await mine.stop()
    await theirs.stop()
    assert mine.requests == [] and len(theirs.requests) == 1


@run_async
async def test_clients_that_leave_mid_request_leave_no_descriptor_behind() -> None:
    instance = await Instance().start()
    async with ingress_for([instance.address]) as ingress:
        await exchange(ingress, get("/warm"))  # the instance connection pool holds one socket now
        baseline = await settled(open_descriptors())
        upload = b"POST /up HTTP/1.1\r\nhost: " + HOST + b"\r\ncontent-length: 1000000\r\n\r\n" + b"x" * 2000
        for i in range(ABORTED):
            await abandon(ingress, b"GET /partial HTTP/1.1\r\nhost: app.te")  # a head cut short
            await abandon(ingress, upload, reset=i % 3 == 0)  # an upload cut short (FIN, and sometimes RST)
        after = await settled(baseline)
        assert after <= baseline + 2, (baseline, after)
        (status, _, _), = await exchange(ingress, get("/still-fine"))
        assert status == 200
    await instance.stop()
    assert instance.connections <= ABORTED + 2  # every upload reached the instance, its socket since closed


@run_async
async def test_a_client_that_half_closes_after_its_request_gets_the_answer_then_the_connection_ends() -> None:
    instance = await Instance().start()
    async with ingress_for([instance.address]) as ingress:
        await exchange(ingress, get("/warm"))
        baseline = await settled(open_descriptors())
        for _ in range(50):
            reader, writer = await asyncio.open_connection(*ingress)
            writer.write(get("/half"))
            writer.write_eof()
            status, _, body = await read_response(reader)
            assert status == 200 and json.loads(body)["path"] == "/half"
            assert await reader.read() == b""  # and the ingress closes its side
            writer.close()
        assert await settled(baseline) <= baseline
    await instance.stop()


@run_async
async def test_a_head_sent_a_byte_at_a_time_gets_408() -> None:
    instance = await Instance().start()
    async with ingress_for([instance.address], head_timeout=0.5) as ingress:
        reader, writer = await asyncio.open_connection(*ingress)
        started = time.monotonic()
        answer = b""
        for byte in get("/slow")[:-2]:  # never quite done
            writer.write(bytes([byte]))
            try:
                answer = await asyncio.wait_for(reader.read(), 0.1)
            except TimeoutError:
                continue
            break
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < 5
    await instance.stop()
    assert instance.requests == []


@run_async
async def test_a_body_that_stops_arriving_ends_both_connections() -> None:
    instance = await Instance().start()
    async with ingress_for([instance.address], idle_timeout=0.5) as ingress:
        baseline = await settled(open_descriptors())
        reader, writer = await asyncio.open_connection(*ingress)
        writer.write(b"POST /up HTTP/1.1\r\nhost: " + HOST + b"\r\ncontent-length: 100\r\n\r\n0123456789")
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 408 ")
        writer.close()
        assert await settled(baseline) <= baseline
    await instance.stop()
