"""The background ``shoal serve`` that ``shoal up`` starts when none answers, and ``shoal down --all`` stops.

The server is a child process in its own session (Ctrl-C in the terminal does not reach it), with its
output in ``DATA_DIR/serve.log`` and its pid in ``DATA_DIR/serve.pid``. It is started as
``python -m shoal serve``, never in-process: ``shoal up`` ends while the server keeps running.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from shoal.cli.output import EXIT_CONNECT, CliError

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def pid_file(data_dir: Path) -> Path:
    return data_dir / "serve.pid"


def log_file(data_dir: Path) -> Path:
    return data_dir / "serve.log"


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def api_answers(url: str, data_dir: Path) -> bool:
    """Whether the API at ``url`` answers an authenticated request with the data dir's admin token."""
    token_path, ca = data_dir / "admin-token", data_dir / "tls" / "ca.pem"
    if not (token_path.is_file() and ca.is_file()):
        return False
    request = urllib.request.Request(f"{url}/v2/account",
                                     headers={"Authorization": f"Bearer {token_path.read_text().strip()}"})
    try:
        with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=str(ca)), timeout=5) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def start(data_dir: Path, api_listen: str, ingress_listen: str) -> int:
    """Start ``shoal serve`` in the background; its pid."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # the server keeps its keys here
    args = [sys.executable, "-m", "shoal", "serve", "--data-dir", str(data_dir), "--api-listen", api_listen,
            "--ingress-listen", ingress_listen]
    with open(os.open(log_file(data_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=data_dir)
    with open(os.open(pid_file(data_dir), os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600), "w") as pid:
        pid.write(f"{process.pid}\n")
    return process.pid


def wait_until_ready(url: str, data_dir: Path, pid: int, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            raise CliError(f"shoal serve exited while starting; see {log_file(data_dir)}", EXIT_CONNECT,
                           tail(log_file(data_dir), 15))
        if api_answers(url, data_dir):
            return
        time.sleep(0.2)
    raise CliError(f"shoal serve did not answer at {url} within {timeout:.0f} s; see {log_file(data_dir)}",
                   EXIT_CONNECT, tail(log_file(data_dir), 15))


def tail(path: Path, lines: int) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_shoal_serve(pid: int) -> bool:
    """Guards against a stale pid file naming a process that reused the pid."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc to ask: trust the pid file
    return b"shoal" in argv and b"serve" in argv


def stop(data_dir: Path, timeout: float = STOP_TIMEOUT) -> str:
    """SIGTERM the recorded server, wait for it (SIGKILL after ``timeout``), forget it; what happened."""
    path = pid_file(data_dir)
    try:
        pid = int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return f"no background server recorded in {path}"
    if not alive(pid) or not _is_shoal_serve(pid):
        path.unlink(missing_ok=True)
        return f"the background server (pid {pid}) was not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    how = "stopped"
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        how = f"killed (it did not stop within {timeout:.0f} s)"
    path.unlink(missing_ok=True)
    return f"{how} the background server (pid {pid})"
