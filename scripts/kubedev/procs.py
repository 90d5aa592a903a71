"""Daemons started detached from the caller, remembered by pid file, stopped only if still ours.

A pid file holds the pid, the process's start time (``/proc/PID/stat`` field 22) and the program; ``stop``
signals the pid only while its start time is unchanged, so a recycled pid is never touched. (The
command line is no test: it reads empty while a large binary is still being exec'd.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class ClusterError(Exception):
    """Something the user must see: printed as one message, exit status 1."""


def log_tail(path: Path, lines: int = 25) -> str:
    """The end of a daemon's log, for error messages."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


def start(name: str, argv: Sequence[str], state: Path, env: dict[str, str] | None = None) -> int:
    """Start ``argv`` in its own session (it outlives this script), log to ``logs/NAME.log``."""
    logs, pids = state / "logs", state / "pids"
    logs.mkdir(parents=True, exist_ok=True)
    pids.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=state, env=env, start_new_session=True)
    (pids / f"{name}.pid").write_text(f"{proc.pid}\n{_started(proc.pid)}\n{argv[0]}\n")
    return proc.pid


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _stat(pid: int) -> list[str]:
    """``/proc/PID/stat`` after the command name: [state, ppid, ...]; empty when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return []


def _started(pid: int) -> str:
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def _zombie(pid: int) -> bool:
    fields = _stat(pid)
    return not fields or fields[0] in ("Z", "X")


def running(state: Path, name: str) -> int | None:
    """The pid of daemon ``name`` if it is alive and still the program we started."""
    try:
        pid_text, started = (state / "pids" / f"{name}.pid").read_text().splitlines()[:2]
    except (FileNotFoundError, ValueError):
        return None
    pid = int(pid_text)
    if _zombie(pid) or _started(pid) != started:
        return None
    return pid


def terminate(pid: int, grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns when the process is gone."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)  # only reaps children of ours (when up failed in this process)
            except ChildProcessError:
                pass
            if _zombie(pid):
                return
            time.sleep(0.1)


def stop(state: Path, name: str, grace: float = 15.0) -> bool:
    """Stop daemon ``name`` if it runs; True when it did."""
    pid = running(state, name)
    if pid is not None:
        terminate(pid, grace)
    (state / "pids" / f"{name}.pid").unlink(missing_ok=True)
    return pid is not None


def wait_until(what: str, check: Callable[[], bool], timeout: float, state: Path, daemon: str | None) -> float:
    """Poll ``check`` until it holds; fail naming ``what`` (with the daemon's log) on timeout or death.

    Returns the seconds waited. ``check`` may raise OSError-family errors while the daemon warms up.
    """
    began = time.monotonic()
    last_error = ""
    while True:
        try:
            if check():
                return time.monotonic() - began
        except (OSError, ValueError, KeyError) as exc:  # connection refused, bad JSON, missing field
            last_error = f" (last error: {exc})"
        if daemon is not None and running(state, daemon) is None:
            raise ClusterError(f"{daemon} exited while waiting for {what}; its log ends:\n"
                               f"{log_tail(state / 'logs' / f'{daemon}.log')}")
        if time.monotonic() - began > timeout:
            where = f"; {daemon}'s log ends:\n{log_tail(state / 'logs' / f'{daemon}.log')}" if daemon else ""
            raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}{last_error}{where}")
        time.sleep(0.2)
