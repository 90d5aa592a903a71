"""The local runtime's console: a real shell under a real pty (``runtime/local/console.py``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import psutil
import pytest

from shoal.runtime.local.console import Consoles, PtyConsole
from tests.runtime.aio import run_async


class Screen:
    """Everything the shell wrote so far (reads never lose what an earlier wait already got)."""

    def __init__(self, console: PtyConsole) -> None:
        self.console = console
        self.text = ""

    async def until(self, needle: str, timeout: float = 10) -> str:
        async with asyncio.timeout(timeout):
            while needle not in self.text:
                data = await self.console.read()
                assert data, f"the shell ended before {needle!r}: {self.text!r}"
                self.text += data.decode(errors="replace")
        return self.text

    async def value_after(self, marker: str) -> str:
        """The rest of the line after ``marker`` (a marker the typed command's echo does not contain)."""
        await self.until(marker)
        async with asyncio.timeout(10):
            while "\n" not in self.text.rsplit(marker, 1)[1]:
                data = await self.console.read()
                assert data, f"the shell ended after {marker!r}: {self.text!r}"
                self.text += data.decode(errors="replace")
        return self.text.rsplit(marker, 1)[1].split("\n", 1)[0].strip()


@run_async
async def test_shell_runs_in_the_working_dir_and_environment(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("x")
    console = await PtyConsole.start(tmp_path, {"PATH": os.environ["PATH"], "GREETING": "hello"})
    try:
        console.resize(100, 30)
        console.write(b'echo "G=$GREETING"; ls; stty size; echo T$((1))=$(tty)\n')
        screen = Screen(console)
        seen = await screen.until("30 100")
        assert "G=hello" in seen and "marker.txt" in seen
        assert (await screen.value_after("T1=")).startswith("/dev/pts/")  # a controlling terminal
        console.write(b"exit 0\n")
        while await console.read():
            pass  # the end: b"" once the shell is gone
        assert await console.read() == b""
    finally:
        await console.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing uid needs root")
@run_async
async def test_shell_runs_as_the_instance_uid(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    console = await PtyConsole.start(tmp_path, {"PATH": os.environ["PATH"]}, uid=65534, gid=65534)
    try:
        console.write(b"echo U$((1))=$(id -u):$(id -g):$(id -G)\n")
        assert await Screen(console).value_after("U1=") == "65534:65534:65534"
    finally:
        await console.close()


@run_async
async def test_close_hangs_up_the_session_and_kills_what_it_started(tmp_path: Path) -> None:
    consoles = Consoles()
    console = await consoles.open(tmp_path, {"PATH": os.environ["PATH"]}, None, None)
    console.write(b"trap '' HUP; sleep 300 & echo B$((2))=$!\n")
    child = int(await Screen(console).value_after("B2="))
    assert psutil.pid_exists(child)
    await consoles.close_all()  # what the runtime does when shoal stops
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    assert not psutil.pid_exists(console.pid) or psutil.Process(console.pid).status() == psutil.STATUS_ZOMBIE
    assert await console.read() == b""
    console.write(b"ignored after close\n")
    await console.close()  # twice is fine
