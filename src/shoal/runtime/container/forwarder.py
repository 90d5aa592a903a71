"""Dev databases for containers: a TCP forwarder per app on its network's gateway, for that app only.

The embedded PostgreSQL (``runtime.local.databases``) listens on 127.0.0.1, which a container cannot
reach (its loopback is its own). Making PostgreSQL listen on every bridge would let any app's
containers reach it; instead shoal listens, for each app with a dev database, on the gateway
address of *that app's* network (the host's side of its bridge) and relays each connection to the
loopback server. ``${db.DATABASE_URL}`` then names ``<gateway>:5432``, the same address for every
instance and across restarts.

Isolation: the host routes between its bridges, so a container of app B can send packets to app A's
gateway address too. The forwarder therefore accepts a connection only when its peer address lies
in app A's own subnet, and closes anything else at once; the database itself still demands the
per-app role and password (``CONNECT`` is revoked from ``PUBLIC``).

The socket is bound with ``IP_FREEBIND``: podman creates a network's bridge (and so its gateway
address) only while a container is attached, and the forwarder must be listening before the first
one starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import socket
from dataclasses import dataclass

from shoal.core.aio import within

log = logging.getLogger("shoal.runtime.container")
IP_FREEBIND = 15  # linux/in.h; the socket module does not name it
PREFERRED_PORT = 5432
_CHUNK = 65536


@dataclass
class Forwarder:
    listen: tuple[str, int]
    target: tuple[str, int]
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
    server: asyncio.Server | None = None
    refused: int = 0

    async def start(self) -> None:
        sock = _bound(self.listen)
        self.server = await asyncio.start_server(self._accept, sock=sock)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not peer or ipaddress.ip_address(peer[0]) not in self.subnet:
            self.refused += 1
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await within(self.server.wait_closed(), 5)


def _bound(listen: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in listen[0] else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        sock.bind(listen)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


class Forwarders:
    """One forwarder per app and database server, made on first need and closed with the app."""

    def __init__(self) -> None:
        self._by_app: dict[tuple[str, tuple[str, int]], Forwarder] = {}
        self._lock = asyncio.Lock()

    async def ensure(self, app_id: str, gateway: str, subnet: str, target: tuple[str, int]) -> tuple[str, int]:
        """Where the app's containers reach ``target``: ``(gateway, port)``."""
        async with self._lock:
            found = self._by_app.get((app_id, target))
            if found is not None:
                return found.listen
            network = ipaddress.ip_network(subnet, strict=False)
            for port in (PREFERRED_PORT, _fallback_port(app_id)):
                forwarder = Forwarder((gateway, port), target, network)
                try:
                    await forwarder.start()
                except OSError as exc:
                    log.warning("cannot listen on %s:%s for app %s: %s", gateway, port, app_id, exc)
                    continue
                self._by_app[(app_id, target)] = forwarder
                return forwarder.listen
            raise OSError(f"no port to forward the dev database of app {app_id} on {gateway}")

    def of(self, app_id: str) -> list[Forwarder]:
        return [f for (app, _), f in self._by_app.items() if app == app_id]

    async def drop_app(self, app_id: str) -> None:
        for key in [k for k in self._by_app if k[0] == app_id]:
            await self._by_app.pop(key).close()

    async def close(self) -> None:
        for forwarder in self._by_app.values():
            await forwarder.close()
        self._by_app.clear()


def _fallback_port(app_id: str) -> int:
    """A stable port of the app's own when 5432 is taken on its gateway (something on 0.0.0.0:5432)."""
    return 20000 + int(hashlib.sha256(app_id.encode()).hexdigest()[:8], 16) % 10000
