"""Cancelling a running job invocation stops the job, on the process and the container runtime."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from shoal.runtime.container.stack import STACK_IMAGE
from tests.conftest import unique_name, wait_deployment, wait_for
from tests.containers import clean, engine_session, image_ids, podman_missing, stack
from tests.e2e.apps import make_repo
from tests.live import UNLIMITED, LiveServer

SLEEPER = "import sys, time\nprint('job started', sys.argv[1], flush=True)\ntime.sleep(600)\n"


def _running(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture(params=["local", "container"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "local":
        live = LiveServer(data_dir=tmp_path / "data", runtime="local").start()
        yield live
        live.stop()
        return
    missing = podman_missing()
    if missing:
        pytest.skip(missing)
    inspect = engine_session(tmp_path / "tests-engine")
    before = image_ids(inspect.engine)
    stack(inspect.engine)
    live = LiveServer(data_dir=tmp_path / "data", runtime="container", extra_args=UNLIMITED)
    try:
        live.start(timeout=120)
        yield live
    finally:
        live.stop()
        clean(engine_session(tmp_path / "data"), before)
        clean(inspect, before)


def test_a_canceled_pre_deploy_job_is_stopped_and_fails_its_deployment(server: LiveServer, tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    # The Dockerfile is for the container runtime (the stack has python3); the process runtime runs the command.
    repo = make_repo(tmp_path / "repo", {"sleeper.py": SLEEPER,
                                         "Dockerfile": f"FROM {STACK_IMAGE}\nWORKDIR /app\nCOPY sleeper.py .\n"})
    spec: dict[str, Any] = {"name": unique_name("cancel"),
            "jobs": [{"name": "migrate", "kind": "PRE_DEPLOY", "git": {"repo_clone_url": str(repo), "branch": "main"},
                      "run_command": f"python3 sleeper.py {marker}"}]}
    if server.runtime == "container":
        spec["jobs"][0]["dockerfile_path"] = "Dockerfile"
    client = server.client()
    app = client.apps.create(body={"spec": spec})["app"]
    assert wait_for(lambda: _running(marker), timeout=180, interval=0.3)

    (invocation,) = client.apps.list_job_invocations(app["id"])["job_invocations"]
    assert invocation["phase"] == "RUNNING"
    canceled = client.apps.cancel_job_invocation(app["id"], invocation["id"])["job_invocation"]
    assert canceled["phase"] == "CANCELED"

    assert wait_for(lambda: not _running(marker), timeout=60, interval=0.3)  # the process is gone, not just marked
    dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"], timeout=60)
    assert dep["phase"] == "ERROR" and "was canceled" in str(dep["progress"]), dep["progress"]
    after = client.apps.get_job_invocation(app["id"], invocation["id"])["job_invocation"]
    assert after["phase"] == "CANCELED" and after["completed_at"] == canceled["completed_at"]
