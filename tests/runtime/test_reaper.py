"""The reaper: a server's instances (their whole process groups) die with it, even by ``kill -9``.

A real "server" process runs the local runtime's supervisor with a reaper and starts an instance
whose shell also leaves a background job in its group; the test kills the server with SIGKILL and
watches the group (what a takeover on another server must not find still running).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shoal.runtime.local.process import group_alive
from tests.conftest import wait_for

SERVER = r"""
import asyncio, os, sys
from pathlib import Path
from shoal.runtime.local.reaper import Reaper
from shoal.runtime.local.supervisor import ProcessSpec, Supervisor

async def main():
    reaper = Reaper() if sys.argv[1] == "reaper" else None
    supervisor = Supervisor(on_output=lambda name, line: None,
                            groups=(reaper.started, reaper.stopped) if reaper else None)
    inst = await supervisor.start(ProcessSpec(name="web-0", command="sleep 300 & sleep 300", cwd=Path("."),
                                              env={"PATH": os.environ["PATH"]}))
    print(inst.pid, flush=True)
    if sys.argv[2] == "stop":
        await supervisor.stop_all(grace=5)
        if reaper:
            reaper.close()
        print("stopped", flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


def start_server(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    server = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, int(server.stdout.readline())


def test_kill_9_of_the_server_takes_its_instances_whole_groups_with_it(tmp_path: Path) -> None:
    server, pgid = start_server(tmp_path, "reaper", "run")
    try:
        assert group_alive(pgid)
        server.send_signal(signal.SIGKILL)
        server.wait()
        wait_for(lambda: not group_alive(pgid), timeout=20, interval=0.05)
    finally:
        server.kill()
        server.wait()
        _kill_group(pgid)


def test_without_a_reaper_the_instances_outlive_a_killed_server(tmp_path: Path) -> None:
    """Why the reaper exists (and what a single server on SQLite still does: harden's adoption)."""
    server, pgid = start_server(tmp_path, "none", "run")
    try:
        server.send_signal(signal.SIGKILL)
        server.wait()
        time.sleep(1)
        assert group_alive(pgid)
    finally:
        _kill_group(pgid)


def test_a_stopped_instance_is_off_the_reapers_list(tmp_path: Path) -> None:
    server, pgid = start_server(tmp_path, "reaper", "stop")
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "stopped"
        assert not group_alive(pgid)
    finally:
        server.kill()
        server.wait()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
