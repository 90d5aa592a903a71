"""shoal's own podman API service: ``podman system service`` on a socket in shoal's data dir.

Role: when podman is installed and no engine URL is given, shoal starts the API service itself, with
its private configuration (``conf``), and stops it when shoal stops. The service is only the API:
containers are run by conmon and outlive it, so a restart of shoal (or of this service) leaves what
runs untouched and the runtime adopts it.

Why the details: the child gets ``PR_SET_PDEATHSIG`` so a ``kill -9`` of shoal takes the API
service with it (nothing is left listening on the socket); a socket left behind by one that died is
removed before starting; a unix socket path may hold at most 107 bytes, so a deep data dir puts the
socket in a short directory under ``/tmp`` named by the data dir's hash.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from shoal.runtime.container.conf import PodmanConf

_PR_SET_PDEATHSIG = 1
_MAX_SOCKET_PATH = 100


class ServiceFailed(Exception):
    """The podman API service did not come up; the message says why (its own last output)."""


def podman_installed() -> bool:
    return shutil.which("podman") is not None


def socket_path(directory: Path) -> Path:
    wanted = directory / "podman.sock"
    if len(str(wanted)) <= _MAX_SOCKET_PATH:
        return wanted
    short = Path("/tmp") / f"shoal-podman-{hashlib.sha256(str(directory).encode()).hexdigest()[:12]}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "podman.sock"


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class PodmanService:
    """One ``podman system service --time=0`` for the life of this object (``start`` … ``stop``)."""

    def __init__(self, directory: Path, conf: PodmanConf) -> None:
        self._directory = directory
        self._conf = conf
        self.socket = socket_path(directory)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 30.0) -> None:
        self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()  # left by a service that died with an earlier shoal
        log = self._directory / "service.log"
        with log.open("wb") as out:
            self._proc = subprocess.Popen(
                ["podman", "system", "service", "--time=0", self.url],
                env={**os.environ, **self._conf.env()}, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                raise ServiceFailed("podman system service did not start: " + (" | ".join(tail) or "no output"))
            time.sleep(0.05)

    def _answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            try:
                probe.connect(str(self.socket))
                probe.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
                return probe.recv(16).startswith(b"HTTP/1.")
            except OSError:
                return False

    def stop(self, grace: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
