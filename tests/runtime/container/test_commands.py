"""The commands that face the engine: ``shoal serve --runtime container`` names the engine it found
or why there is none (at start), and ``shoal stack build`` reuses an up-to-date stack image."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shoal.runtime.container.engine import Engine
from tests.live import LiveServer, free_port


def _shoal(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400", "SHOAL_PURE_PYTHON": "1"}
    return subprocess.run([sys.executable, "-m", "shoal", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)


def test_serve_without_an_engine_fails_at_start_with_the_reason(tmp_path: Path) -> None:
    done = _shoal("serve", "--runtime", "container", "--data-dir", str(tmp_path / "data"),
                  "--container-engine-url", f"unix://{tmp_path}/no-engine.sock",
                  "--api-listen", f"127.0.0.1:{free_port()}", "--ingress-listen", f"127.0.0.1:{free_port()}")
    assert done.returncode != 0
    assert f"nothing listens at unix://{tmp_path}/no-engine.sock (--container-engine-url)" in done.stderr + done.stdout


def test_serve_names_the_engine_it_started_serves_and_stops_it(tmp_path: Path, engine: Engine) -> None:
    server = LiveServer(data_dir=tmp_path / "data", runtime="container").start(timeout=120)
    socket = tmp_path / "data" / "podman" / "podman.sock"
    try:
        assert f"container engine: podman {engine.info.version}" in server.log()
        assert f"at unix://{socket}" in server.log()
        assert socket.exists()
        with server.http() as http:
            assert http.get("/v2/apps").status_code == 200  # serving, with the container runtime behind it
    finally:
        assert server.stop() == 0
    assert not socket.exists()  # shoal's podman service stopped with it


def test_stack_build_reuses_an_up_to_date_image(tmp_path: Path, stack_image: str) -> None:
    done = _shoal("stack", "build", "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert "localhost/shoal/stack:bookworm is up to date" in done.stdout
    assert stack_image in done.stdout


def test_bad_mirror_is_a_usage_error(tmp_path: Path) -> None:
    done = _shoal("stack", "build", "--data-dir", str(tmp_path / "data"), "--registry-mirror", "docker.io")
    assert done.returncode == 2 and "is not FROM=TO" in done.stderr
