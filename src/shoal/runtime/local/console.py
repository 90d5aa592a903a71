"""Consoles of the local runtime: an interactive shell under a pseudo-terminal, inside an instance.

``doctl apps console`` (runtime reference §6) opens a shell in a running container. Here an
instance is a process group on this machine, so "inside" means what the instance itself has: its
working tree (``cwd``), its complete environment (secrets decrypted, ``PORT``, bindables) and its
user. The shell runs as the instance's uid and gid when its ``ProcessSpec`` carries them (the
attributes ``uid``/``gid``; absent, the shell runs as shoal does, like the instance itself).

The shell is the leader of its own session with the pty as its controlling terminal, so job
control, ``Ctrl-C`` and window-size changes (``SIGWINCH``) behave as in any terminal. Closing the
console hangs the session up and kills what is left of it; when shoal itself dies, the kernel
hangs the session up as the pty's master side closes.

It must not decide who may open a console or which instance (the engine and the API do).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import shutil
import signal
import struct
import sys
import termios
from collections.abc import Callable, Mapping
from pathlib import Path

from shoal.core.aio import within
from shoal.runtime.local.process import as_user, proc_stats

READ_BYTES = 64 * 1024
HANGUP_GRACE_SECONDS = 2.0
INSTANCE_WATCH_SECONDS = 1.0  # how soon a console notices its instance stopped
# Makes the pty (already on fds 0-2) the controlling terminal of a new session, then becomes the
# shell. A tiny exec'd helper instead of ``preexec_fn``, which is unsafe in a threaded server.
_LOGIN_TTY = ("import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
              "os.execvpe(sys.argv[1], sys.argv[1:], os.environ)")


def shell_command() -> list[str]:
    """bash when the machine has it (what a user expects at a prompt), else POSIX sh."""
    found = shutil.which("bash") or "/bin/sh"
    return [found]


class PtyConsole:
    """One shell under a pty; implements ``shoal.domain.ports.Console``."""

    def __init__(self, process: asyncio.subprocess.Process, master: int,
                 on_close: Callable[[PtyConsole], None] | None = None) -> None:
        self._process = process
        self._master = master
        self._on_close = on_close
        self._output: asyncio.Queue[bytes] = asyncio.Queue()
        self._pending = bytearray()  # keystrokes the pty could not take yet
        self._closed = False
        self._ended = False  # the end (b"") has been read
        loop = asyncio.get_running_loop()
        loop.add_reader(master, self._readable)

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    async def start(cls, cwd: Path, env: Mapping[str, str], uid: int | None = None, gid: int | None = None,
                    command: list[str] | None = None,
                    on_close: Callable[[PtyConsole], None] | None = None) -> PtyConsole:
        master, slave = os.openpty()
        try:
            os.set_blocking(master, False)
            shell_env = {**env, "TERM": env.get("TERM") or "xterm-256color"}
            # The tty helper takes the terminal as shoal, then setpriv drops to the instance's user
            # (uvloop's subprocesses take no user=/group=): the same way the instance itself runs.
            user = as_user((uid, gid if gid is not None else uid)) if uid is not None else []
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _LOGIN_TTY, *user, *(command or shell_command()),
                stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=shell_env, close_fds=True)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # the shell holds its own copies; ours would keep the pty open after it ends
        return cls(process, master, on_close)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, READ_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: every slave side is closed, the shell and its children are gone
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self._detach()
        self._output.put_nowait(data)

    def _detach(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._master)
            loop.remove_writer(self._master)

    async def read(self) -> bytes:
        if self._ended or (self._closed and self._output.empty()):
            return b""
        data = await self._output.get()
        self._ended = not data
        return data

    def write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            try:
                sent = os.write(self._master, self._pending)
            except BlockingIOError:
                loop.add_writer(self._master, self._flush)
                return
            except OSError:  # the shell is gone; its end is reported through read()
                self._pending.clear()
                break
            del self._pending[:sent]
        with contextlib.suppress(ValueError, OSError):
            loop.remove_writer(self._master)

    def resize(self, columns: int, rows: int) -> None:
        if self._closed:
            return
        size = struct.pack("HHHH", max(1, min(rows, 10_000)), max(1, min(columns, 10_000)), 0, 0)
        with contextlib.suppress(OSError):
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, size)  # the kernel signals SIGWINCH

    async def close(self, reason: str | None = None) -> None:
        """End the shell; ``reason`` is the last thing its terminal shows."""
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            self._on_close(self)
        self._detach()
        if reason:
            self._output.put_nowait(f"\r\nshoal: {reason}\r\n".encode())
        # The shell leads its own session: hang it up, then kill whatever of the session is left
        # (with job control, background jobs run in process groups of their own).
        _signal_group(self._process.pid, signal.SIGHUP)
        try:
            await within(self._process.wait(), HANGUP_GRACE_SECONDS)
        except TimeoutError:
            pass
        for pid in await asyncio.to_thread(session_members, self._process.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            await self._process.wait()
        os.close(self._master)
        self._output.put_nowait(b"")


def session_members(sid: int) -> list[int]:
    """Every live process of session ``sid`` (Linux ``/proc``; empty elsewhere)."""
    try:
        return [pid for pid, fields in proc_stats()
                if len(fields) > 3 and fields[3] == str(sid).encode() and fields[0] not in (b"Z", b"X")]
    except OSError:
        return [sid]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Consoles:
    """The consoles a runtime has open, so that stopping shoal closes every one of them, and an
    instance that stops (retired, scaled away, restarted, its app deleted) takes its consoles with it,
    as a container's end takes an exec with it: the shell is not a process of the instance's group."""

    def __init__(self, watch_seconds: float = INSTANCE_WATCH_SECONDS) -> None:
        self._open: set[PtyConsole] = set()
        self._watchers: set[asyncio.Task[None]] = set()
        self._every = watch_seconds

    async def open(self, cwd: Path, env: Mapping[str, str], uid: int | None, gid: int | None,
                   command: list[str] | None = None, running: Callable[[], bool] | None = None) -> PtyConsole:
        """A shell; with ``running``, closed as soon as that says the instance is no longer running."""
        console = await PtyConsole.start(cwd, env, uid, gid, command=command, on_close=self._open.discard)
        self._open.add(console)
        if running is not None:
            watcher = asyncio.get_running_loop().create_task(self._close_when_gone(console, running))
            self._watchers.add(watcher)
            watcher.add_done_callback(self._watchers.discard)
        return console

    async def _close_when_gone(self, console: PtyConsole, running: Callable[[], bool]) -> None:
        while console in self._open:
            if not running():
                await console.close("the instance stopped, and its console with it")
                return
            await asyncio.sleep(self._every)

    async def close_all(self) -> None:
        for watcher in list(self._watchers):
            watcher.cancel()
        await asyncio.gather(*(c.close() for c in list(self._open)), *self._watchers, return_exceptions=True)
