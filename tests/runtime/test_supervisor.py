"""The supervisor with real tiny subprocesses: readiness, restarts, liveness, stopping whole groups, jobs.

Timing is only ever bounded generously; conditions are polled, never slept for.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from shoal.domain.plan import Probe
from shoal.runtime.local.supervisor import Backoff, Instance, ProcessSpec, Supervisor
from tests.live import free_port
from tests.runtime.aio import run_async

PY = sys.executable
HTTP_SERVER = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
print("listening", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
IGNORE_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(1000)"
FAST = Backoff(initial=0.05, maximum=0.2, reset_after=60)


class Recorder:
    """Collects what the supervisor reports, like the runtime's log sink would."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.exits: list[tuple[str, int, list[str]]] = []

    def output(self, name: str, line: str) -> None:
        self.lines.append((name, line))

    def exit(self, name: str, code: int, last: list[str]) -> None:
        self.exits.append((name, code, last))

    def supervisor(self, **kwargs: Any) -> Supervisor:
        return Supervisor(self.output, self.exit, backoff=FAST, settle_seconds=0.2, **kwargs)

    def of(self, name: str) -> list[str]:
        return [line for who, line in self.lines if who == name]


def spec(name: str, command: str, cwd: Path, **kwargs: Any) -> ProcessSpec:
    env = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}
    return ProcessSpec(name=name, command=command, cwd=cwd, env=env, **kwargs)


def http_spec(name: str, tmp_path: Path, port: int, **kwargs: Any) -> ProcessSpec:
    (tmp_path / "server.py").write_text(HTTP_SERVER)
    return spec(name, f"exec {PY} server.py", tmp_path, env={"PORT": str(port)}, **kwargs)


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def alive(proc: psutil.Process) -> bool:
    # Orphans reparented to a PID 1 that never reaps stay zombies: dead for our purposes.
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def group(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and alive(proc):
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


@run_async
async def test_http_readiness_then_stop(tmp_path: Path) -> None:
    rec, port = Recorder(), free_port()
    readiness = Probe(port, "/health", period_seconds=0.1, failure_threshold=50)
    async with rec.supervisor() as sup:
        inst = await sup.start(http_spec("web-0", tmp_path, port, readiness=readiness))
        assert await sup.wait_ready("web-0", timeout=10)
        assert (inst.ready, inst.state) == (True, "running")
        assert sup.instances() == [inst]
        pid = inst.pid
        assert pid is not None and psutil.pid_exists(pid)
        await sup.stop("web-0", grace=5)
        assert group(pid) == []
        assert (inst.state, inst.ready, inst.pid, sup.instances()) == ("stopped", False, None, [])
        await sup.stop("web-0")  # idempotent
    assert rec.of("web-0") == ["listening"] and rec.exits == []


@run_async
async def test_tcp_readiness(tmp_path: Path) -> None:
    port = free_port()
    async with Recorder().supervisor() as sup:
        await sup.start(http_spec("tcp-0", tmp_path, port, readiness=Probe(port, period_seconds=0.1)))
        assert await sup.wait_ready("tcp-0", timeout=10)


@run_async
async def test_readiness_that_never_passes(tmp_path: Path) -> None:
    port = free_port()
    readiness = Probe(port, "/missing", period_seconds=0.1, failure_threshold=5)
    async with Recorder().supervisor() as sup:
        inst = await sup.start(http_spec("web-0", tmp_path, port, readiness=readiness))
        started = time.monotonic()
        assert not await sup.wait_ready("web-0", timeout=10)
        # 5 failures 0.1 s apart: well under the timeout (a slow interpreter start adds some).
        assert time.monotonic() - started < 5
        assert inst.state == "starting" and inst.restart_count == 0  # readiness never restarts


@run_async
async def test_no_probe_is_ready_after_settling(tmp_path: Path) -> None:
    async with Recorder().supervisor() as sup:
        inst = await sup.start(spec("worker-0", "sleep 1000", tmp_path))
        assert not inst.ready
        assert await sup.wait_ready("worker-0", timeout=5)


@run_async
async def test_crash_restarts_with_backoff_and_reports_last_lines(tmp_path: Path) -> None:
    rec = Recorder()
    async with rec.supervisor() as sup:
        inst = await sup.start(spec("worker-0", "echo one; echo two >&2; exit 3", tmp_path))
        await until(lambda: inst.restart_count >= 2 and len(rec.exits) >= 2)
        assert rec.exits[0] == ("worker-0", 3, ["one", "two"])
        assert inst.last_exit_code == 3 and inst.last_ending == "exit"
        assert not await sup.wait_ready("worker-0", timeout=10)  # keeps crashing
    assert rec.of("worker-0")[:4] == ["one", "two", "one", "two"]


@run_async
async def test_readiness_changes_are_reported_as_they_happen(tmp_path: Path) -> None:
    changes: list[tuple[str, bool]] = []
    port = free_port()
    readiness = Probe(port, "/health", period_seconds=0.1, failure_threshold=1)
    async with Recorder().supervisor(on_ready=lambda name, ok: changes.append((name, ok))) as sup:
        inst = await sup.start(http_spec("web-0", tmp_path, port, readiness=readiness))
        assert await sup.wait_ready("web-0", timeout=10)
        assert changes == [("web-0", True)]
        assert inst.pid is not None
        os.kill(inst.pid, 9)  # gone: not ready; restarted and passing again: ready
        await until(lambda: changes[-2:] == [("web-0", False), ("web-0", True)])
        await sup.stop("web-0")
    assert changes == [("web-0", True), ("web-0", False), ("web-0", True), ("web-0", False)]


def test_backoff_doubles_up_to_the_maximum() -> None:
    assert [Backoff().delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


@run_async
async def test_stop_during_backoff(tmp_path: Path) -> None:
    sup = Supervisor(lambda *_: None, backoff=Backoff(initial=30))
    inst = await sup.start(spec("worker-0", "exit 1", tmp_path))
    await until(lambda: inst.state == "backoff")
    started = time.monotonic()
    await sup.stop("worker-0")
    assert time.monotonic() - started < 2 and inst.state == "stopped" and inst.restart_count == 0


@run_async
async def test_one_shot_start_does_not_restart(tmp_path: Path) -> None:
    rec = Recorder()
    async with rec.supervisor() as sup:
        inst = await sup.start(spec("once-0", "echo done", tmp_path, restart=False))
        await until(lambda: inst.state == "exited")
        assert rec.exits == [("once-0", 0, ["done"])] and inst.restart_count == 0
        await sup.start(spec("once-0", "true", tmp_path, restart=False))  # the name is free again


@run_async
async def test_sigterm_ignored_gets_sigkill_after_grace(tmp_path: Path) -> None:
    rec = Recorder()
    async with rec.supervisor() as sup:
        inst = await sup.start(spec("stubborn-0", f"exec {PY} -c \"{IGNORE_TERM}\"", tmp_path))
        await until(lambda: rec.of("stubborn-0") == ["up"])
        pid = inst.pid
        assert pid is not None
        started = time.monotonic()
        await sup.stop("stubborn-0", grace=0.5)
        assert 0.4 < time.monotonic() - started < 5
        assert inst.last_exit_code == 137 and group(pid) == []


@run_async
async def test_grandchildren_do_not_survive_stop(tmp_path: Path) -> None:
    async with Recorder().supervisor() as sup:
        inst = await sup.start(spec("family-0", "sleep 1000 & sleep 1000", tmp_path))
        pgid = inst.pid
        assert pgid is not None
        await until(lambda: len([p for p in group(pgid) if p.name() == "sleep"]) == 2)
        members = group(pgid)
        await sup.stop("family-0", grace=2)
        assert not any(alive(p) for p in members)


@run_async
async def test_grandchildren_do_not_survive_a_crash(tmp_path: Path) -> None:
    rec = Recorder()
    async with rec.supervisor() as sup:
        inst = await sup.start(spec("family-0", "sleep 1000 & echo $!; sleep 0.3; exit 2", tmp_path))
        await until(lambda: len(rec.exits) >= 1)
        orphan = psutil.Process(int(rec.exits[0][2][0]))
        await until(lambda: not alive(orphan))
        assert inst.last_exit_code == 2


@run_async
async def test_liveness_failure_restarts(tmp_path: Path) -> None:
    rec = Recorder()
    liveness = Probe(free_port(), period_seconds=0.1, failure_threshold=2)  # nothing listens there
    async with rec.supervisor() as sup:
        inst = await sup.start(spec("hung-0", "echo up; exec sleep 1000", tmp_path, liveness=liveness,
                                    grace_period_seconds=1))
        await until(lambda: inst.restart_count >= 1)
        assert rec.exits[0] == ("hung-0", 143, ["up"])
        assert inst.last_ending == "liveness"


@run_async
async def test_stop_all_leaves_nothing_behind(tmp_path: Path) -> None:
    rec = Recorder()
    sup = rec.supervisor()
    insts = [
        await sup.start(spec("a-0", "sleep 1000 & sleep 1000", tmp_path)),
        await sup.start(spec("b-0", f"exec {PY} -c \"{IGNORE_TERM}\"", tmp_path)),
        await sup.start(spec("c-0", "exit 1", tmp_path)),
    ]
    await until(lambda: rec.of("b-0") == ["up"])
    pgids = [inst.pid for inst in insts[:2]]
    started = time.monotonic()
    await sup.stop_all(grace=0.5)
    assert time.monotonic() - started < 5
    assert sup.instances() == [] and all(inst.state == "stopped" for inst in insts)
    assert all(group(pgid) == [] for pgid in pgids if pgid is not None)


@run_async
async def test_duplicate_names_and_unknown_names(tmp_path: Path) -> None:
    async with Recorder().supervisor() as sup:
        await sup.start(spec("x-0", "sleep 1000", tmp_path))
        with pytest.raises(ValueError):
            await sup.start(spec("x-0", "sleep 1000", tmp_path))
        with pytest.raises(KeyError):
            await sup.wait_ready("nope", timeout=1)
        await sup.stop("nope")


@run_async
async def test_unstartable_process_raises(tmp_path: Path) -> None:
    async with Recorder().supervisor() as sup:
        with pytest.raises(OSError):
            await sup.start(spec("x-0", "true", tmp_path / "missing"))
        assert sup.instances() == []


@run_async
async def test_run_once_returns_exit_code_and_streams_output(tmp_path: Path) -> None:
    rec = Recorder()
    sup = rec.supervisor()
    assert await sup.run_once(spec("job-0", "echo hello; echo oops >&2; exit 7", tmp_path)) == 7
    assert await sup.run_once(spec("job-1", "printf 'a\\r\\nb\\377c'", tmp_path)) == 0
    assert rec.of("job-0") == ["hello", "oops"]
    assert rec.of("job-1") == ["a", "b\ufffdc"]
    assert rec.exits == [] and sup.instances() == []


@run_async
async def test_run_once_timeout_terminates_and_raises(tmp_path: Path) -> None:
    rec = Recorder()
    sup = rec.supervisor()
    job = spec("job-0", "echo $$; sleep 1000 & sleep 1000", tmp_path, grace_period_seconds=0.5)
    with pytest.raises(TimeoutError):
        await sup.run_once(job, timeout=0.5)
    assert group(int(rec.of("job-0")[0])) == [] and sup.instances() == []


@run_async
async def test_run_once_cancel_kills_the_process(tmp_path: Path) -> None:
    rec = Recorder()
    sup = rec.supervisor()
    task = asyncio.create_task(sup.run_once(spec("job-0", "echo $$; exec sleep 1000", tmp_path)))
    await until(lambda: rec.of("job-0") != [])
    pid = int(rec.of("job-0")[0])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert group(pid) == [] and sup.instances() == []


@run_async
async def test_stop_ends_a_running_job(tmp_path: Path) -> None:
    rec = Recorder()
    sup = rec.supervisor()
    task = asyncio.create_task(sup.run_once(spec("job-0", "echo go; exec sleep 1000", tmp_path)))
    await until(lambda: rec.of("job-0") == ["go"])
    await sup.stop("job-0", grace=1)
    assert await task == 143


@run_async
async def test_instance_view(tmp_path: Path) -> None:
    async with Recorder().supervisor() as sup:
        inst = await sup.start(spec("v-0", "sleep 1000", tmp_path))
        assert isinstance(inst, Instance)
        assert (inst.name, inst.restart_count, inst.last_exit_code, inst.state) == ("v-0", 0, None, "starting")
