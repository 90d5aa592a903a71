"""Warm action workers: started on demand, initialised once, reused, and killed when they overrun.

Role: for each action, a pool of worker processes (``workers/python_worker.py`` or
``workers/node_worker.js``) that speak OpenWhisk's action-proxy protocol on loopback. An activation
takes an idle warm worker, or starts one (a cold start: spawn, port, ``/init``) when none is idle
and the action has fewer than ``max_workers``; otherwise it waits for one to come back. Cold starts
across the gateway are bounded by ``max_cold_starts`` at a time. Workers idle for ``idle_seconds``
are stopped.

Limits, as OpenWhisk enforces them: the activation's ``timeout`` covers ``/run`` (and, separately,
``/init``); the memory limit is the worker's resident memory, watched while it runs (every
``MEMORY_POLL_SECONDS``) — RLIMIT_AS cannot hold Node.js, which reserves about 1 GB of address space
before running a line, and the cgroup hierarchy on a shared host is not shoal's to carve. A worker
that overruns either, or dies mid-activation, is killed and never reused; the caller gets a
``Failed`` with OpenWhisk's message for it.

Workers stay in the gateway's process group, so stopping the gateway's group (the supervisor does)
stops every worker with it, even after a SIGKILL. Each worker has an environment of only
``PATH``, ``HOME``, ``LANG``, ``TZ`` and the action's ``environment``; its stdout and stderr are
the gateway's, so what a handler prints is in the component's RUN logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shoal.core.aio import within
from shoal.domain.functions.model import Action

WORKERS = Path(__file__).parent / "workers"
MEMORY_POLL_SECONDS = 0.02
CONTROL_VARIABLE = "SHOAL_CONTROL_FD"  # the worker writes its port on this file descriptor
_PAGE = os.sysconf("SC_PAGE_SIZE")
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")


@dataclass(frozen=True)
class Succeeded:
    result: Any
    application_error: bool  # the action returned {"error": ...}
    wait_ms: float = 0.0  # from the call until a worker took it: waiting for a slot, a cold start
    duration_ms: float = 0.0  # the worker's run of it


@dataclass(frozen=True)
class Failed:
    """A developer error: the activation produced no usable result (OpenWhisk's wording in ``message``)."""

    message: str
    wait_ms: float = 0.0
    duration_ms: float = 0.0


Outcome = Succeeded | Failed


@dataclass(frozen=True)
class Interpreters:
    python: str
    node: str = "node"


class _Overrun(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def timed_out(timeout_ms: int, init: bool = False) -> str:
    return f"The action exceeded its time limits of {timeout_ms} milliseconds" + (
        " during initialization." if init else ".")


MEMORY_EXHAUSTED = "The action exhausted its memory and was aborted."
ABNORMAL_RUN = "The action did not produce a valid response and exited unexpectedly."
ABNORMAL_INIT = "The action did not initialize and exited unexpectedly."


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


@dataclass(eq=False)
class Worker:
    action: Action
    process: asyncio.subprocess.Process
    port: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    started_at: float
    last_used: float = field(default_factory=time.monotonic)
    activations: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    async def call(self, path: str, payload: Mapping[str, Any], timeout: float, memory_bytes: int) -> tuple[int, Any]:
        """POST ``payload`` to ``path`` and read the answer; ``_Overrun`` past ``timeout`` or ``memory_bytes``."""
        body = json.dumps(payload).encode()
        self.writer.write(b"POST %s HTTP/1.1\r\nhost: worker\r\ncontent-type: application/json\r\n"
                          b"content-length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
        answer = asyncio.ensure_future(self._answer())
        watch = asyncio.ensure_future(self._watch_memory(memory_bytes))
        try:
            done, _ = await asyncio.wait({answer, watch}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            if not answer.done():
                answer.cancel()
            await asyncio.gather(answer, watch, return_exceptions=True)
        if answer in done:
            return answer.result()
        if watch in done and watch.exception() is not None:
            raise watch.exception()  # type: ignore[misc]
        raise _Overrun("timeout")

    async def _answer(self) -> tuple[int, Any]:
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("worker closed the connection")
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        return status, json.loads(await self.reader.readexactly(length) or b"null")

    async def _watch_memory(self, limit: int) -> None:
        while True:
            await asyncio.sleep(MEMORY_POLL_SECONDS)
            if _rss_bytes(self.pid) > limit:
                raise _Overrun("memory")

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        await self.process.wait()


async def start_worker(action: Action, root: Path, interpreters: Interpreters,
                       env: Mapping[str, str] | None = None) -> Worker:
    """Spawn a worker for ``action`` and connect to it (not yet initialised)."""
    read_end, write_end = os.pipe()
    if action.language == "python":
        argv = [interpreters.python, "-I", "-S", "-u", str(WORKERS / "python_worker.py")]
    else:
        argv = [interpreters.node, f"--max-old-space-size={action.limits.memory_mb}", str(WORKERS / "node_worker.js")]
    base = env if env is not None else {k: os.environ[k] for k in _INHERITED if k in os.environ}
    control = os.fdopen(read_end, "rb", buffering=0)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=root / action.path if action.is_directory else (root / action.path).parent,
            env={**base, "PYTHONUNBUFFERED": "1", CONTROL_VARIABLE: str(write_end)},
            stdin=asyncio.subprocess.DEVNULL, pass_fds=(write_end,))
    except BaseException:
        control.close()
        raise
    finally:
        os.close(write_end)
    try:
        port = int(await _read_port(control))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    return Worker(action, process, port, reader, writer, time.monotonic())


async def _read_port(control: Any) -> bytes:
    """The port line a worker writes on its control pipe (ConnectionError if it died first)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), control)
    try:
        line = await reader.readline()
    finally:
        transport.close()
    if not line.strip():
        raise ConnectionError("the worker exited before it listened")
    return line.strip()


@dataclass
class Settings:
    interpreters: Interpreters
    max_workers: int = 4  # per action: concurrent activations of one action
    max_cold_starts: int = 2  # across the gateway, at a time
    idle_seconds: float = 600.0  # OpenWhisk keeps an idle container about ten minutes


class ActionPool:
    """The warm workers of one action."""

    def __init__(self, action: Action, root: Path, settings: Settings, cold_starts: asyncio.Semaphore,
                 env: Mapping[str, str] | None = None) -> None:
        self.action = action
        self._root = root
        self._settings = settings
        self._cold_starts = cold_starts
        self._env = env
        self._idle: list[Worker] = []
        self._slots = asyncio.Semaphore(settings.max_workers)
        self._all: set[Worker] = set()
        self.cold_starts = 0

    @property
    def workers(self) -> list[Worker]:
        return list(self._all)

    async def invoke(self, args: Mapping[str, Any], meta: Mapping[str, Any]) -> Outcome:
        """Run one activation on a warm worker (starting one if none is idle), timed: how long it
        waited for its worker, and how long the worker ran it (what the FUNCTIONS_* alerts judge)."""
        entered = time.monotonic()
        ran: list[float] = []  # when the worker was handed it, once it was
        outcome = await self._invoke(args, meta, ran)
        ended = time.monotonic()
        started = ran[0] if ran else ended
        return replace(outcome, wait_ms=(started - entered) * 1000, duration_ms=(ended - started) * 1000)

    async def _invoke(self, args: Mapping[str, Any], meta: Mapping[str, Any], ran: list[float]) -> Outcome:
        limits = self.action.limits
        timeout, memory = limits.timeout_ms / 1000, limits.memory_mb * 1024 * 1024
        async with self._slots:
            worker = self._idle.pop() if self._idle else None
            if worker is None:
                started = await self._cold_start(timeout, memory)
                if isinstance(started, Failed):
                    return started
                worker = started
            ran.append(time.monotonic())
            try:
                status, answer = await worker.call("/run", {**meta, "value": dict(args)}, timeout, memory)
            except _Overrun as overrun:
                await self._discard(worker)
                return Failed(MEMORY_EXHAUSTED if overrun.message == "memory" else timed_out(limits.timeout_ms))
            except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                await self._discard(worker)
                return Failed(ABNORMAL_RUN)
            except BaseException:  # cancelled (the caller went away): the worker is mid-activation
                await asyncio.shield(self._discard(worker))
                raise
            worker.activations += 1
            worker.last_used = time.monotonic()
            self._idle.append(worker)
        if status != 200:
            error = answer.get("error") if isinstance(answer, dict) else None
            return Failed(str(error) if error else f"The action did not produce a valid JSON response: {answer}")
        if not isinstance(answer, dict):
            return Failed("The action did not produce a valid JSON response.")
        return Succeeded(answer, "error" in answer)

    async def _cold_start(self, timeout: float, memory: int) -> Worker | Failed:
        async with self._cold_starts:
            try:
                worker = await within(start_worker(self.action, self._root, self._settings.interpreters, self._env),
                                      max(timeout, 10.0))
            except (OSError, ConnectionError, TimeoutError, ValueError):
                return Failed(ABNORMAL_INIT)
            self._all.add(worker)
            self.cold_starts += 1
            code = self._root / (self.action.entry or self.action.path)
            init = {"value": {"name": self.action.qualified_name, "main": self.action.main, "path": str(code),
                              "env": dict(self.action.environment)}}
            try:
                status, answer = await worker.call("/init", init, timeout, memory)
            except _Overrun as overrun:
                await self._discard(worker)
                return Failed(MEMORY_EXHAUSTED if overrun.message == "memory"
                              else timed_out(self.action.limits.timeout_ms, init=True))
            except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                await self._discard(worker)
                return Failed(ABNORMAL_INIT)
            except BaseException:
                await asyncio.shield(self._discard(worker))
                raise
        if status != 200:
            await self._discard(worker)
            error = answer.get("error") if isinstance(answer, dict) else None
            return Failed(str(error or f"The action failed during initialization: {answer}"))
        return worker

    async def _discard(self, worker: Worker) -> None:
        self._all.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        await worker.kill()

    async def reap(self, now: float) -> None:
        """Stop the workers idle for longer than ``idle_seconds``."""
        stale = [w for w in self._idle if now - w.last_used > self._settings.idle_seconds]
        for worker in stale:
            await self._discard(worker)

    async def close(self) -> None:
        await asyncio.gather(*(self._discard(w) for w in list(self._all)), return_exceptions=True)
