"""Container-runtime rows for ``bench/deploy.py``: shoal beside the bare engine, in the same run.

* ``update → ACTIVE, image cached``: an env-only update of a Dockerfile service (the image is reused,
  so this is start + readiness + traffic switch), beside ``podman run`` of the same image until it
  answers on its published port.
* ``Dockerfile build, warm cache``: a forced rebuild deployment (every layer from the engine's cache)
  to ACTIVE, beside ``podman build`` of the same context with the same warm cache.

Needs podman and the stack image (``shoal stack build``); removes what it made.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.containers import HELLO_DOCKERFILE, HELLO_GO, clean, engine_session, image_ids
from tests.e2e.apps import make_repo
from tests.live import LiveServer

UNLIMITED = str(10**9)
HEALTH = {"http_path": "/", "period_seconds": 1}


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:>8.1f}"


def _wait_active(http: Any, app_id: str, dep_id: str) -> None:
    while True:
        phase = http.get(f"/v2/apps/{app_id}/deployments/{dep_id}").json()["deployment"]["phase"]
        if phase in ("ACTIVE", "ERROR", "CANCELED", "SUPERSEDED"):
            if phase != "ACTIVE":
                raise RuntimeError(f"deployment ended {phase}")
            return
        time.sleep(0.02)


def _podman(conf: Path, *args: str) -> str:
    env = {**os.environ, "CONTAINERS_CONF": str(conf / "containers.conf"),
           "CONTAINERS_REGISTRIES_CONF": str(conf / "registries.conf")}
    return subprocess.run(["podman", *args], env=env, check=True, capture_output=True, text=True).stdout.strip()


def _bare_run(conf: Path, image: str) -> float:
    start = time.perf_counter()
    cid = _podman(conf, "run", "-d", "--label", "shoal.bench=1", "-p", "127.0.0.1::8080", "-e", "PORT=8080", image)
    try:
        port = _podman(conf, "port", cid, "8080/tcp").rsplit(":", 1)[1]
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                time.sleep(0.01)
    finally:
        _podman(conf, "rm", "-f", cid)


def _bare_build(conf: Path, context: Path) -> float:
    start = time.perf_counter()
    _podman(conf, "build", "-q", "-t", "localhost/shoal-bench/hello:warm", str(context))
    took = time.perf_counter() - start
    _podman(conf, "rmi", "-f", "localhost/shoal-bench/hello:warm")
    return took


def container_figures(rounds: int = 5) -> list[str]:
    if shutil.which("podman") is None:
        return ["| (podman is not installed: no container figures) | | | |"]
    with tempfile.TemporaryDirectory(prefix="shoal-bench-ct-") as tmp:
        root = Path(tmp)
        probe = engine_session(root / "before")
        before = image_ids(probe.engine)
        probe.close()
        repo = make_repo(root / "hello", {"hello.go": HELLO_GO, "Dockerfile": HELLO_DOCKERFILE})
        server = LiveServer(root / "data", runtime="container", extra_args=[
            "--rate-limit-per-minute", UNLIMITED, "--rate-limit-per-hour", UNLIMITED]).start(timeout=120)
        conf = root / "data" / "podman"
        try:
            with server.http() as http:
                def spec(version: str) -> dict[str, Any]:
                    return {"name": "hello-bench", "services": [{
                        "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"},
                        "dockerfile_path": "Dockerfile", "health_check": HEALTH,
                        "termination": {"drain_seconds": 1, "grace_period_seconds": 2},
                        "envs": [{"key": "VERSION", "value": version, "scope": "RUN_TIME"}]}]}

                app = http.post("/v2/apps", json={"spec": spec("v0")}).json()["app"]
                _wait_active(http, app["id"], app["pending_deployment"]["id"])
                updates, builds, bare_runs, bare_builds = [], [], [], []
                for i in range(rounds):
                    start = time.perf_counter()
                    dep = http.put(f"/v2/apps/{app['id']}", json={"spec": spec(f"v{i + 1}")}).json()
                    _wait_active(http, app["id"], dep["app"]["pending_deployment"]["id"])
                    updates.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    forced = http.post(f"/v2/apps/{app['id']}/deployments", json={"force_build": True}).json()
                    _wait_active(http, app["id"], forced["deployment"]["id"])
                    builds.append(time.perf_counter() - start)
                image = _image_of(conf, app["id"])
                for _ in range(rounds):
                    bare_runs.append(_bare_run(conf, image))
                    bare_builds.append(_bare_build(conf, repo))
        finally:
            server.stop()
            clean(engine_session(root / "data"), before)  # what the server labelled, and its build steps
    return [f"| {'update → ACTIVE, image cached':<34} | {rounds:>5} | {_ms(updates)} | {_ms(bare_runs)} |",
            f"| {'Dockerfile build, warm cache':<34} | {rounds:>5} | {_ms(builds)} | {_ms(bare_builds)} |"]


def _image_of(conf: Path, app_id: str) -> str:
    """The image shoal built for the app (its tag carries the build key)."""
    return _podman(conf, "images", "--filter", f"label=shoal.app={app_id}", "--format",
                   "{{.Repository}}:{{.Tag}}").splitlines()[0]
