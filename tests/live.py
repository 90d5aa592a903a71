"""A real ``shoal serve`` process on loopback ports, for tests and benchmarks to drive."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


# For servers many polling requests share: DigitalOcean's 250 a minute per token would turn raw
# (non-retrying) requests into 429s; rate limits are tested on servers of their own.
UNLIMITED = ["--rate-limit-per-minute", "1000000", "--rate-limit-per-hour", "10000000"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_token_value() -> str:
    return "dop_v1_" + secrets.token_hex(32)


@dataclass
class LiveServer:
    data_dir: Path
    database_url: str | None = None
    extra_args: list[str] = field(default_factory=list)
    runtime: str = "simulate"
    env: dict[str, str] = field(default_factory=dict)  # set for the server process (e.g. SSL_CERT_FILE)
    token: str = field(default_factory=new_token_value)
    api_port: int = field(default_factory=free_port)
    ingress_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def ca(self) -> str:
        return str(self.data_dir / "tls" / "ca.pem")

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-serve.log"

    def _args(self) -> list[str]:
        args = [sys.executable, "-m", "shoal", "serve", "--data-dir", str(self.data_dir),
                "--api-listen", f"127.0.0.1:{self.api_port}", "--ingress-listen", f"127.0.0.1:{self.ingress_port}",
                "--runtime", self.runtime]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args + self.extra_args

    def start(self, timeout: float = 60) -> LiveServer:
        env = {**os.environ, **self.env, "SHOAL_BOOTSTRAP_TOKEN": self.token}
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process owns it
        self.process = subprocess.Popen(self._args(), env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"shoal serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.http().get("/v2/account").status_code == 200:
                    return self
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"shoal serve did not answer within {timeout}s:\n{self.log()}")

    def stop(self) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def http(self, token: str | None = None, anonymous: bool = False, **kwargs: Any) -> httpx.Client:
        """An httpx client trusting this server's CA, authenticated unless ``anonymous``."""
        headers = {} if anonymous else {"Authorization": f"Bearer {token or self.token}"}
        verify = ssl.create_default_context(cafile=self.ca)
        return httpx.Client(base_url=self.url, verify=verify, headers=headers, timeout=30, **kwargs)

    def client(self, token: str | None = None, **kwargs: Any) -> Any:
        import pydo

        return pydo.Client(token or self.token, endpoint=self.url, connection_verify=self.ca, **kwargs)

    def shoal(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a ``shoal`` admin command against this server's data dir."""
        cmd = [sys.executable, "-m", "shoal", *args, "--data-dir", str(self.data_dir)]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)

    def issue_token(self, *scopes: str, account: str = "admin", expires_in: str | None = None) -> tuple[str, str]:
        """A new token's value and id, made with ``shoal token create``."""
        args = ["token", "create", "--account", account]
        for scope in scopes:
            args += ["--scope", scope]
        if expires_in:
            args += ["--expires-in", expires_in]
        done = self.shoal(*args)
        return done.stdout.strip(), done.stderr.split()[1]

    def create_token(self, *scopes: str, account: str = "admin", expires_in: str | None = None) -> str:
        return self.issue_token(*scopes, account=account, expires_in=expires_in)[0]
