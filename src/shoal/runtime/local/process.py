"""Process groups: spawning a command in its own session, reading its output, ending the group.

Every instance (and every build step) runs as the leader of a new session, so signalling its
group reaches ``sh``, ``npm`` and whatever they started; nothing a component starts outlives its
stop. With ``user`` the process runs as that uid/gid with no supplementary groups (an app's own
identity when shoal runs as root, ``identity``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

MAX_LINE_BYTES = 64 * 1024  # longer lines are split rather than buffered without bound
GROUP_POLL_SECONDS = 0.05


class ChildProtocol(asyncio.SubprocessProtocol):
    """Splits merged output into lines and tells when the process and its pipe are gone.

    A protocol rather than ``Process.wait()``: on Python 3.11 ``wait()`` also waits for the
    pipe to close, which a grandchild holding stdout can postpone forever.
    """

    def __init__(self, emit: Callable[[bytes], None], piece: Callable[[bytes], None] | None = None) -> None:
        self._emit = emit
        # Where the pieces of a line longer than MAX_LINE_BYTES go (all but its last): a log sink
        # joins them again before masking secrets, so a secret cut in two is still hidden.
        self._piece = piece or emit
        self._pending = b""
        self.exited = asyncio.Event()
        self.output_closed = asyncio.Event()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        *lines, self._pending = (self._pending + data).split(b"\n")
        for line in lines:
            self._emit(line)
        while len(self._pending) >= MAX_LINE_BYTES:
            cut = utf8_cut(self._pending, MAX_LINE_BYTES)
            self._piece(self._pending[:cut])
            self._pending = self._pending[cut:]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = b""
        self.output_closed.set()

    def process_exited(self) -> None:
        self.exited.set()


def utf8_cut(data: bytes, limit: int) -> int:
    """Where to cut ``data`` at most ``limit`` bytes in without splitting a UTF-8 character."""
    cut = limit
    while cut > limit - 4 and cut < len(data) and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut if cut > limit - 4 else limit


@dataclass
class Child:
    transport: asyncio.SubprocessTransport
    protocol: ChildProtocol
    pid: int  # also the process group id (start_new_session)
    started_at: float

    @property
    def exit_code(self) -> int:
        code = self.transport.get_returncode()
        assert code is not None, "exit_code read before the process exited"
        return 128 - code if code < 0 else code  # -15 → 143, as a shell or container reports it


async def spawn(command: str, cwd: Path, env: Mapping[str, str], emit: Callable[[bytes], None],
                piece: Callable[[bytes], None] | None = None, user: tuple[int, int] | None = None) -> Child:
    """Start ``command`` under ``/bin/sh -c`` as the leader of a new session (its own process group)."""
    return await spawn_exec(["/bin/sh", "-c", command], cwd, env, emit, piece, user)


async def spawn_exec(argv: list[str], cwd: Path, env: Mapping[str, str], emit: Callable[[bytes], None],
                     piece: Callable[[bytes], None] | None = None, user: tuple[int, int] | None = None) -> Child:
    """Start ``argv`` as the leader of a new session, as ``user`` (uid, gid) when given."""
    loop = asyncio.get_running_loop()
    protocol = ChildProtocol(emit, piece)
    transport, _ = await loop.subprocess_exec(
        lambda: protocol, *as_user(user), *argv,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=cwd, env=dict(env), start_new_session=True,
    )
    return Child(transport, protocol, transport.get_pid(), loop.time())


# Drops to the app's uid/gid and then execs: uvloop's subprocess_exec takes no user/group, and a
# preexec_fn is unsafe in a process with threads. Without setpriv, a tiny Python stand-in.
_DROP = ("import os, sys; os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[1])); "
         "os.execvp(sys.argv[3], sys.argv[3:])")


def as_user(user: tuple[int, int] | None) -> list[str]:
    """The argv prefix that runs what follows as ``user`` (uid, gid): no supplementary groups, no
    capabilities, and no way back up through setuid programs (no_new_privs)."""
    if user is None:
        return []
    uid, gid = user
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if setpriv:
        return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", "--bounding-set=-all", "--"]
    return [sys.executable, "-S", "-c", _DROP, str(uid), str(gid)]


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Orphaned grandchildren are reaped by PID 1, which in a container may never do it.
    try:
        return any(len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] not in (b"Z", b"X")
                   for _, fields in proc_stats())
    except OSError:  # no procfs: zombies count as alive, so a stop may wait out its grace
        return True


def proc_stats() -> Iterator[tuple[int, list[bytes]]]:
    """Every process's ``/proc/PID/stat`` fields after its command (state, ppid, pgrp, session, ...);
    a process that ends meanwhile is skipped. OSError when there is no procfs to list."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        yield int(entry), stat[stat.rfind(b")") + 2:].split()  # the command may hold spaces and ")"


async def terminate(child: Child, grace: float) -> None:
    """SIGTERM the whole group; SIGKILL whatever remains after ``grace`` seconds."""
    signal_group(child.pid, signal.SIGTERM)
    clean = False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            await child.protocol.exited.wait()
            while await asyncio.to_thread(group_alive, child.pid):
                await asyncio.sleep(GROUP_POLL_SECONDS)
            clean = True
    if not clean:
        signal_group(child.pid, signal.SIGKILL)
    await child.protocol.exited.wait()
