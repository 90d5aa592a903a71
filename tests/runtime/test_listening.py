"""Which ports a process group listens on, read from /proc against real sockets of a real child."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shoal.runtime.local.listening import listening_ports


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc")
def test_the_ports_a_process_group_listens_on(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ready = tmp_path / "ready"
    # A shell whose grandchild listens: the whole group counts, not just its leader.
    child = subprocess.Popen(["/bin/sh", "-c", f"{sys.executable} -c \"import socket, pathlib, time; "
                              f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); "
                              f"pathlib.Path('{ready}').touch(); time.sleep(60)\""], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listening_ports(child.pid) == {port}
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    # Gone: nothing, and no error. The grandchild dies a moment after the shell is reaped (a busy
    # machine showed its socket still there right after the wait), so give it a few seconds.
    deadline = time.monotonic() + 10
    while listening_ports(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening_ports(child.pid) == set()


def test_no_proc_means_no_answer(tmp_path: Path) -> None:
    assert listening_ports(os.getpid(), proc=tmp_path / "missing") == set()
