"""The ingress's listeners: plain HTTP and, when asked, HTTPS with a certificate per host (SNI).

Role: own what every connection shares (the route table, the pool of instance connections, the
traffic meter, the TLS check) and the listeners' lifetime: idle connections are swept, and on
stop the requests in flight get a grace period before the rest is cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from shoal.core.aio import within
from shoal.domain.traffic import TrafficMeter
from shoal.ingress.client import ClientConnection
from shoal.ingress.dispatch import Decision
from shoal.ingress.h2c import H2Pool
from shoal.ingress.table import RouteTable
from shoal.ingress.tls import SniContexts
from shoal.ingress.upstream import UpstreamPool

CLIENT_IDLE_SECONDS = 75.0  # a client connection that sends nothing this long (between or inside requests) is closed
HEAD_SECONDS = 30.0  # a request head not whole this long after it began is answered 408 (slow-header clients)
SWEEP_SECONDS = 5.0
DECISIONS_KEPT = 4096  # routing decisions remembered per table version (most traffic repeats its URLs)
# An instance that has not begun to answer this long gets its request answered with 504, as
# DigitalOcean's edge does after 100 s. Checked by the sweep, so no request pays for a timer.
ANSWER_TIMEOUT_SECONDS = 100.0


@dataclass(frozen=True)
class Bind:
    host: str
    port: int
    tls: SniContexts | None = None


class Ingress:
    def __init__(self, table: RouteTable, meter: TrafficMeter | None = None,
                 answer_timeout: float = ANSWER_TIMEOUT_SECONDS, head_timeout: float = HEAD_SECONDS,
                 idle_timeout: float = CLIENT_IDLE_SECONDS) -> None:
        self.table = table
        self.meter = meter
        self.answer_timeout = answer_timeout
        self.head_timeout = head_timeout
        self.idle_timeout = idle_timeout
        self.pool = UpstreamPool()
        self.h2_pool = H2Pool()  # for services with protocol: HTTP2
        self.connections: set[ClientConnection] = set()
        self._tls: list[SniContexts] = []
        self.https_port: int | None = None  # plain-HTTP requests for custom domains are sent here
        self._decisions: dict[tuple[bytes, bytes, int | None], Decision] = {}
        self._decisions_version = -1

    def remembered(self, key: tuple[bytes, bytes, int | None]) -> Decision | None:
        """A routing decision made earlier for the same Host, target and listener, if still valid."""
        if self._decisions_version != self.table.version:
            self._decisions.clear()
            self._decisions_version = self.table.version
            return None
        return self._decisions.get(key)

    def remember(self, key: tuple[bytes, bytes, int | None], decision: Decision) -> None:
        if len(self._decisions) >= DECISIONS_KEPT:
            self._decisions.clear()
        self._decisions[key] = decision

    def acceptable(self, transport: asyncio.BaseTransport) -> bool:
        """Whether a connection meets its host's minimum TLS version (plain HTTP always does)."""
        connection = transport.get_extra_info("ssl_object")
        return connection is None or all(tls.acceptable(connection) for tls in self._tls)

    async def listen(self, bind: Bind) -> asyncio.Server:
        if bind.tls is not None:
            self._tls.append(bind.tls)
            self.https_port = bind.port
        scheme = b"https" if bind.tls is not None else b"http"
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: ClientConnection(self, scheme), bind.host, bind.port,
                                        ssl=bind.tls.default if bind.tls else None, backlog=2048,
                                        reuse_address=True)

    async def run(self, binds: list[Bind], stop: asyncio.Event, grace: float = 2.0) -> None:
        """Serve on ``binds`` until ``stop`` is set."""
        await self.serve([await self.listen(bind) for bind in binds], stop, grace)

    async def serve(self, servers: list[asyncio.Server], stop: asyncio.Event, grace: float = 2.0) -> None:
        """Sweep while ``servers`` listen; when ``stop`` is set, close them and drain."""
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await within(stop.wait(), min(SWEEP_SECONDS, self.answer_timeout / 4,
                                                  self.head_timeout / 4, self.idle_timeout / 4))
                self.sweep()
        finally:
            for server in servers:
                server.close()
            await self.drain(grace)

    def sweep(self) -> None:
        """Close client connections idle too long; end requests that stopped arriving; answer
        requests whose instance is too slow to begin."""
        now = time.monotonic()
        idle, late = now - self.idle_timeout, now - self.answer_timeout
        for connection in list(self.connections):
            exchange = connection.exchange
            if connection.stalled(now, self.head_timeout, self.idle_timeout):
                connection.time_out_request()
            elif exchange is None:
                if 0 < connection.idle_since < idle:
                    connection.close()
            elif exchange.overdue(late):
                exchange.time_out(self.answer_timeout)
        self.pool.sweep()
        self.h2_pool.sweep()

    async def drain(self, grace: float) -> None:
        """Close idle connections now, busy ones when their answer is out or ``grace`` has passed."""
        deadline = time.monotonic() + grace
        while True:
            for connection in list(self.connections):
                if connection.exchange is None:
                    connection.close()
            if not self.connections or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection.abort()
        self.pool.close()
        self.h2_pool.close()
