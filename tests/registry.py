"""A real image registry on loopback for tests: Debian's ``docker-registry`` (the CNCF distribution
registry) with htpasswd auth, so ``image`` sources with ``registry_credentials`` are tested end to
end through ``--registry-mirror``. It stores into a temp dir and is stopped by the test that made it."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.live import free_port

USER = "shoal-test"
PASSWORD = "s3cret-registry-token"


def registry_available() -> str | None:
    """``None`` when a loopback registry can run here, else why not (the skip reason)."""
    if shutil.which("docker-registry") is None:
        return "Debian's docker-registry is not installed (apt-get install -y docker-registry)"
    try:
        import bcrypt  # noqa: F401
    except ImportError:
        return "bcrypt (pip) is needed to write the registry's htpasswd file"
    return None


@dataclass
class LoopbackRegistry:
    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    auth: bool = True  # htpasswd (USER, PASSWORD); without: open, as the test cluster's registry is
    deletes: bool = True  # whether the registry lets manifests be deleted

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LoopbackRegistry:
        import bcrypt

        self.root.mkdir(parents=True, exist_ok=True)
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (self.root / "htpasswd").write_text(f"{USER}:{hashed}\n")
        auth = f"auth:\n  htpasswd:\n    realm: shoal-test\n    path: {self.root / 'htpasswd'}\n" if self.auth else ""
        (self.root / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: {str(self.deletes).lower()}\n"
            f"http:\n  addr: {self.host}\n" + auth)
        log = (self.root / "registry.log").open("wb")
        self.process = subprocess.Popen(["docker-registry", "serve", str(self.root / "config.yml")],
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=1).status_code == (401 if self.auth else 200):
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("docker-registry did not start: " + (self.root / "registry.log").read_text()[-500:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
