"""Re-applying a spec read back from the API restarts nothing (issue 13 item 5, issue 14 item 5).

``doctl apps update APP --spec <(doctl apps spec get APP)`` and Terraform's second apply send the
spec GET returned. On the local runtime, with real processes: no new deployment is made, the
same processes keep serving, and a change that does run differently still deploys.
"""

from __future__ import annotations

import textwrap
import time
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import unique_name, wait_deployment, wait_for
from tests.e2e.apps import make_repo
from tests.live import UNLIMITED, LiveServer

PID_SERVER = textwrap.dedent('''
    import os, http.server
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"{os.getpid()} {os.environ.get('GREETING', '')} {os.environ.get('TOKEN', '')}".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
''')
WORKER = "#!/bin/sh\nwhile true; do sleep 0.5; done\n"


def _worker_pid(marks: object) -> int | None:
    """The worker's shell, found by the variable only this test's app has (as root, shoal's apps run as
    users of their own and cannot write into the test's directories)."""
    for proc in psutil.process_iter(["cmdline", "environ"]):
        if proc.info["cmdline"] == ["sh", "worker.sh"] and (proc.info["environ"] or {}).get("MARKS") == str(marks):
            return int(proc.pid)
    return None


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("reapply")
    server = LiveServer(data_dir=root / "data", runtime="local", extra_args=UNLIMITED).start()
    yield server, root
    server.stop()


def _answer(server: LiveServer, app: dict[str, Any]) -> str:
    return httpx.get(f"http://127.0.0.1:{server.ingress_port}/", headers={"host": app["live_domain"]},
                     timeout=10).text


def test_apply_read_back_reapply_makes_no_deployment_and_restarts_nothing(local: Any) -> None:
    server, root = local
    client = server.client()
    repo = make_repo(root / "repo", {"web/app.py": PID_SERVER, "web/requirements.txt": "",
                                      "tasks/worker.sh": WORKER})
    marks = root / "marks"  # only a marker in the worker's environment
    source = {"git": {"repo_clone_url": str(repo), "branch": "main"}}
    spec = {
        "name": unique_name("again"),
        "envs": [{"key": "MARKS", "value": str(marks)}, {"key": "TOKEN", "value": "s3cret", "type": "SECRET"}],
        "services": [{"name": "web", **source, "source_dir": "web", "run_command": "python app.py",
                      "envs": [{"key": "GREETING", "value": "hi"}]}],
        "workers": [{"name": "worker", **source, "source_dir": "tasks", "run_command": "sh worker.sh"}],
    }
    app = client.apps.create(body={"spec": spec})["app"]
    first = wait_deployment(client, app["id"], app["pending_deployment"]["id"], timeout=180)
    assert first["phase"] == "ACTIVE", server.log()
    app = client.apps.get(app["id"])["app"]
    pid, greeting, token = _answer(server, app).split()
    assert (greeting, token) == ("hi", "s3cret")
    worker_pid = wait_for(lambda: _worker_pid(marks))

    # What was sent comes back without the running defaults; the secret as EV[...].
    read = app["spec"]
    assert "instance_count" not in read["services"][0] and "instance_size_slug" not in read["services"][0]
    assert "region" not in read and "type" not in read["envs"][0]
    assert read["envs"][1]["value"].startswith("EV[")

    again = client.apps.update(app["id"], body={"spec": read})["app"]
    assert again["pending_deployment"]["id"] == first["id"]  # the newest deployment, already ACTIVE
    assert again["spec"] == read
    time.sleep(3)  # a restart would have begun by now
    deployments = client.apps.list_deployments(app["id"])["deployments"]
    assert [d["id"] for d in deployments] == [first["id"]]
    assert _answer(server, app).split()[0] == pid
    assert psutil.pid_exists(int(pid)) and psutil.pid_exists(worker_pid)
    assert _worker_pid(marks) == worker_pid

    # Spelling out a default DigitalOcean applies anyway changes nothing either, but is stored.
    explicit = {**read, "services": [{**read["services"][0], "instance_count": 1}]}
    stored = client.apps.update(app["id"], body={"spec": explicit})["app"]
    assert stored["spec"]["services"][0]["instance_count"] == 1
    assert stored["pending_deployment"]["id"] == first["id"]

    # A change that runs differently deploys and restarts the service.
    changed = {**read, "services": [{**read["services"][0], "envs": [{"key": "GREETING", "value": "bye"}]}]}
    dep = client.apps.update(app["id"], body={"spec": changed})["app"]["pending_deployment"]
    assert dep["id"] != first["id"]
    assert wait_deployment(client, app["id"], dep["id"], timeout=180)["phase"] == "ACTIVE", server.log()
    new_pid, greeting, _ = _answer(server, app).split()
    assert greeting == "bye" and new_pid != pid
    client.apps.delete(app["id"])


def test_reapplying_after_a_failed_deployment_deploys_again(local: Any) -> None:
    server, root = local
    client = server.client()
    repo = make_repo(root / "broken", {"app.py": "raise SystemExit(3)\n", "requirements.txt": ""})
    spec = {"name": unique_name("retry"),
            "workers": [{"name": "worker", "git": {"repo_clone_url": str(repo), "branch": "main"},
                         "run_command": "false"}],
            "jobs": [{"name": "pre", "kind": "PRE_DEPLOY", "git": {"repo_clone_url": str(repo), "branch": "main"},
                      "run_command": "python app.py"}]}
    app = client.apps.create(body={"spec": spec})["app"]
    failed = wait_deployment(client, app["id"], app["pending_deployment"]["id"], timeout=180)
    assert failed["phase"] == "ERROR"
    read = client.apps.get(app["id"])["app"]["spec"]
    retry = client.apps.update(app["id"], body={"spec": read})["app"]["pending_deployment"]
    assert retry["id"] != failed["id"]
    wait_deployment(client, app["id"], retry["id"], timeout=180)
    client.apps.delete(app["id"])
