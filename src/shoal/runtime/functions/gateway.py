"""The functions gateway: one process per functions component, serving its web actions over HTTP.

``python -m shoal.runtime.functions.gateway`` with its configuration (``GatewayConfig``, JSON) in the
``SHOAL_FUNCTIONS`` environment variable. It listens on the loopback port the runtime chose, like a
service instance, so the ingress forwards the component's route to it as an ``Upstream`` (prefix
stripped: it sees ``/<package>/<action>...``) and applies the component's CORS policy on the way out.

Per request: OpenWhisk's web action contract (``shoal.domain.functions.web``) turns the request into
the action's input, a warm worker of that action runs it (``pool``), and the result becomes the
response. Non-web actions have no pool here, so they answer 404 like a missing one. A failed
activation (timeout, memory, crash) is logged on stderr — the component's RUN logs — with the
activation id the response carries.

Each activation is counted (``domain.component_metrics.Activations``: how many, failed ones, run
and wait time, GB-seconds) in totals since the gateway started, which shoal reads from
``STATS_PATH`` with the gateway's ``stats_token`` (a secret of its configuration, so a request
through the ingress cannot read them) for the FUNCTIONS_* alert rules.

Not done here: TLS (the ingress terminates it), request logging (the ingress counts requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.domain.component_metrics import Activations, activations_record, counted
from shoal.domain.functions.model import Action, WebMode, action_from_record, action_record
from shoal.domain.functions.web import (ERROR_PROCESSING, MAX_REQUEST_BYTES, NOT_FOUND, UNAUTHORIZED, WebAnswer,
                                        WebRequest, activation_input, cors_headers, error_answer, lowered,
                                        parse_target, result_answer)
from shoal.runtime.functions.pool import ActionPool, Failed, Interpreters, Settings

CONFIG_VARIABLE = "SHOAL_FUNCTIONS"
STATS_PATH, STATS_HEADER = "/_shoal/activations", "x-shoal-stats"
REAP_SECONDS = 30.0
ORPHAN_POLL_SECONDS = 1.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class GatewayConfig:
    port: int
    root: Path  # the built project (its actions' paths are relative to it)
    actions: tuple[Action, ...]
    namespace: str = "shoal"
    api_host: str = ""
    default_cors: bool = True  # False when the component has a CORS policy the ingress applies
    python: str = sys.executable
    node: str = "node"
    max_workers: int = 4
    idle_seconds: float = 600.0
    stats_token: str = ""  # who may read the activation totals at STATS_PATH ("": nobody)

    def to_json(self) -> str:
        return json.dumps({"port": self.port, "root": str(self.root), "namespace": self.namespace,
                           "stats_token": self.stats_token,
                           "api_host": self.api_host, "default_cors": self.default_cors, "python": self.python,
                           "node": self.node, "max_workers": self.max_workers, "idle_seconds": self.idle_seconds,
                           "actions": [action_record(a) for a in self.actions]})

    @classmethod
    def from_json(cls, text: str) -> GatewayConfig:
        data = json.loads(text)
        return cls(port=int(data["port"]), root=Path(data["root"]),
                   actions=tuple(action_from_record(a) for a in data["actions"]),
                   namespace=str(data.get("namespace") or "shoal"), api_host=str(data.get("api_host") or ""),
                   default_cors=bool(data.get("default_cors", True)), python=str(data.get("python") or sys.executable),
                   node=str(data.get("node") or "node"), max_workers=int(data.get("max_workers") or 4),
                   idle_seconds=float(data.get("idle_seconds") or 600.0),
                   stats_token=str(data.get("stats_token") or ""))


class Gateway:
    """The ASGI application (and ``handle`` for callers that already hold a parsed request)."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        settings = Settings(Interpreters(config.python, config.node), max_workers=config.max_workers,
                            idle_seconds=config.idle_seconds)
        cold_starts = asyncio.Semaphore(settings.max_cold_starts)
        self.pools = {(a.package, a.name): ActionPool(a, config.root, settings, cold_starts)
                      for a in config.actions if a.web != WebMode.OFF}
        self._reaper: asyncio.Task[None] | None = None
        self.activations = Activations(source=uuid.uuid4().hex)  # totals since this gateway started
        self.on_orphaned: Callable[[], None] | None = None  # called once if the process that started us dies

    async def handle(self, request: WebRequest, activation_id: str | None = None) -> WebAnswer:
        activation_id = activation_id or uuid.uuid4().hex
        target = parse_target(request.path)
        pool = self.pools.get((target.package, target.name)) if target else None
        if target is None or pool is None:
            return error_answer(404, NOT_FOUND, activation_id)
        action = pool.action
        headers = lowered(request.headers)
        cors = cors_headers(headers) if self.config.default_cors and not action.custom_options else ()
        if request.method == "OPTIONS" and cors:
            return WebAnswer(200, cors)
        if action.web_secure is not None and headers.get("x-require-whisk-auth") != action.web_secure:
            return error_answer(401, UNAUTHORIZED, activation_id).with_headers(cors)
        arguments = activation_input(action, WebRequest(request.method, target.rest, request.query, request.headers,
                                                        request.body), activation_id)
        if isinstance(arguments, WebAnswer):
            return arguments.with_headers(cors)
        deadline = int(time.time() * 1000) + action.limits.timeout_ms
        meta = {"activation_id": activation_id, "transaction_id": activation_id, "deadline": deadline,
                "namespace": self.config.namespace, "action_name": f"/{self.config.namespace}/{action.qualified_name}",
                "action_version": "0.0.1", "api_host": self.config.api_host, "api_key": ""}
        outcome = await pool.invoke(arguments, meta)
        failed = isinstance(outcome, Failed) or outcome.application_error
        self.activations = counted(self.activations, action.limits.memory_mb, outcome.duration_ms, outcome.wait_ms,
                                   failed)
        if isinstance(outcome, Failed):
            print(f"{action.qualified_name} activation {activation_id}: {outcome.message}", file=sys.stderr,
                  flush=True)
            return error_answer(400, ERROR_PROCESSING, activation_id).with_headers(cors)
        return result_answer(outcome.result, target.extension, activation_id,
                             outcome.application_error).with_headers(cors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body, too_big = await _read_body(receive)
        if self._stats_asked(scope):
            answer = WebAnswer(200, (("content-type", "application/json"),),
                               json.dumps(activations_record(self.activations)).encode())
        elif too_big:
            answer = error_answer(413, f"Request larger than allowed: more than {MAX_REQUEST_BYTES} bytes.",
                                  uuid.uuid4().hex)
        else:
            headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
            request = WebRequest(scope["method"], scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
                                 or scope["path"], scope.get("query_string", b"").decode("latin-1"), headers, body)
            answer = await self.handle(request)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
        raw.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": raw})
        await send({"type": "http.response.body", "body": answer.body})

    def _stats_asked(self, scope: Scope) -> bool:
        if not self.config.stats_token or scope.get("path") != STATS_PATH:
            return False
        given = next((v for k, v in scope["headers"] if k.lower() == STATS_HEADER.encode()), b"")
        return hmac.compare_digest(given, self.config.stats_token.encode())

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._reaper = asyncio.get_running_loop().create_task(self._reap())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _reap(self) -> None:
        """Stop idle workers now and then; and end the gateway when its parent (shoal) is gone, so a
        ``kill -9`` of shoal leaves no gateway or worker behind (the next shoal starts its own)."""
        parent, last_reap = os.getppid(), time.monotonic()
        while True:
            await asyncio.sleep(ORPHAN_POLL_SECONDS)
            if os.getppid() != parent and self.on_orphaned is not None:
                self.on_orphaned()
                self.on_orphaned = None
                with contextlib.suppress(OSError):  # the pipe to shoal's log reader is likely gone with it
                    print("functions gateway: shoal is gone; stopping", file=sys.stderr, flush=True)
            if time.monotonic() - last_reap >= REAP_SECONDS:
                last_reap = time.monotonic()
                for pool in self.pools.values():
                    try:
                        await pool.reap(last_reap)
                    except Exception as exc:  # noqa: BLE001 - reaping again later beats a dead reaper
                        with contextlib.suppress(OSError):
                            print(f"functions gateway: stopping idle workers failed: {exc!r}", file=sys.stderr)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await asyncio.gather(*(pool.close() for pool in self.pools.values()), return_exceptions=True)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks), False


def main() -> None:
    import uvicorn  # only the gateway process needs it

    config = GatewayConfig.from_json(os.environ[CONFIG_VARIABLE])
    gateway = Gateway(config)
    names = ", ".join(f"/{a.qualified_name}" for a in config.actions if a.web != WebMode.OFF) or "none"
    print(f"functions gateway listening on 127.0.0.1:{config.port}; web actions: {names}", flush=True)
    # On SIGTERM activations in flight may finish (the supervisor's grace period is longer).
    server = uvicorn.Server(uvicorn.Config(gateway, host="127.0.0.1", port=config.port, log_level="warning",
                                           access_log=False, lifespan="on", timeout_graceful_shutdown=5))
    gateway.on_orphaned = lambda: setattr(server, "should_exit", True)
    server.run()


if __name__ == "__main__":
    main()
