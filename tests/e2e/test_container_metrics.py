"""Metrics, autoscaling and inactivity sleep of a real ``shoal serve --runtime container`` on podman, driven
by pydo: the same things ``test_metrics.py`` checks of the process runtime, with every instance a
container. ``--window-scale 0.01`` turns the minimum inactivity_sleep (600 s) into 6 s and shortens the
autoscaler's windows alike; ``--metrics-interval 1`` samples every second. Everything the server labels
is removed at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import unique_name, wait_deployment
from tests.containers import clean, engine_session, image_ids, stack
from tests.e2e.apps import make_repo
from tests.live import LiveServer
from tests.receivers import wait_until

SERVICE = textwrap.dedent('''
    import os, threading, time, http.server
    if os.environ.get("BURN"):
        def burn():
            while True:
                pass
        threading.Thread(target=burn, daemon=True).start()
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/work"):
                end = time.process_time() + 0.05
                while time.process_time() < end:
                    pass
            body = f"ok {os.environ.get('HOSTNAME', '')}\\n".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    print("listening", flush=True)
    http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
''')
UNLIMITED = str(10**9)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    root = Path(tempfile.mkdtemp(prefix="shoal-container-metrics-"))
    os.chmod(root, 0o755)
    inspect = engine_session(root / "tests-engine")
    before = image_ids(inspect.engine)
    stack(inspect.engine)
    server = LiveServer(data_dir=root / "data", runtime="container",
                        extra_args=["--metrics-interval", "1", "--window-scale", "0.01",
                                    "--rate-limit-per-minute", UNLIMITED, "--rate-limit-per-hour", UNLIMITED])
    try:
        repo = make_repo(root / "repo", {"app.py": SERVICE, "requirements.txt": ""})
        server.start(timeout=120)
        yield server, repo
    finally:
        server.stop()
        clean(engine_session(root / "data"), before)  # what the server left, by its own owner label
        clean(inspect, before)
        shutil.rmtree(root, ignore_errors=True)


def _deploy(server: LiveServer, spec: dict[str, Any]) -> dict[str, Any]:
    client = server.client()
    app = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"], timeout=420)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    return client.apps.get(app["id"])["app"]


def _service(repo: Path, **extra: Any) -> dict[str, Any]:
    return {"name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "run_command": "python3 app.py",
            "health_check": {"http_path": "/", "period_seconds": 1},
            "termination": {"drain_seconds": 1, "grace_period_seconds": 2}, **extra}


def _instances(server: LiveServer, app: dict[str, Any]) -> int:
    return len(server.client().apps.get_instances(app["id"])["instances"])


def test_a_cpu_burning_container_has_cpu_and_memory_series(setup: tuple[LiveServer, Path]) -> None:
    server, repo = setup
    client = server.client()
    app = _deploy(server, {"name": unique_name("burner"), "services": [_service(
        repo, instance_size_slug="apps-d-1vcpu-0.5gb", envs=[{"key": "BURN", "value": "1"}])]})

    def cpu() -> list[float]:
        now = int(time.time()) + 1  # end is a whole second: the latest sample is after it
        matrix = client.monitoring.get_app_cpu_percentage_metrics(app_id=app["id"], start=str(now - 120),
                                                                  end=str(now))
        return [float(v) for series in matrix["data"]["result"] for _, v in series["values"]]

    values = wait_until(lambda: (found := cpu()) and max(found) > 20 and found, timeout=60)
    assert max(values) <= 105  # a percentage of its one CPU (the container is limited to it)
    now = int(time.time()) + 1
    matrix = client.monitoring.get_app_cpu_percentage_metrics(app_id=app["id"], start=str(now - 120), end=str(now))
    (series,) = matrix["data"]["result"]
    assert series["metric"]["app_component"] == "web" and series["metric"]["app_uuid"] == app["id"]
    memory = client.monitoring.get_app_memory_percentage_metrics(app_id=app["id"], app_component="web",
                                                                 start=str(now - 120), end=str(now))
    assert float(memory["data"]["result"][0]["values"][-1][1]) > 0
    health = client.apps.get_health(app["id"])["app_health"]["components"][0]
    assert health["cpu_usage_percent"] > 10 and health["memory_usage_percent"] > 0


def test_an_autoscaled_container_service_under_load_scales_up_and_back_down(setup: tuple[LiveServer, Path]) -> None:
    server, repo = setup
    client = server.client()
    app = _deploy(server, {"name": unique_name("scaled"), "services": [_service(
        repo, instance_size_slug="apps-d-1vcpu-0.5gb",
        autoscaling={"min_instance_count": 1, "max_instance_count": 2, "metrics": {"cpu": {"percent": 20}}})]})
    url, host = f"http://127.0.0.1:{server.ingress_port}/work", app["live_domain"]
    assert _instances(server, app) == 1
    stop = threading.Event()
    answers: list[int] = []
    served_by: set[str] = set()

    def load() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                answer = http.get(url, headers={"host": host})
                answers.append(answer.status_code)
                served_by.add(answer.text.strip())

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: _instances(server, app) == 2, timeout=120)
        wait_until(lambda: len(served_by) == 2, timeout=30)  # the added container takes its share
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert answers and set(answers) == {200}  # nobody saw the scaling
    wait_until(lambda: _instances(server, app) == 1, timeout=120)
    health = client.apps.get_health(app["id"])["app_health"]["components"][0]
    assert health["replicas_desired"] == 1 == health["replicas_ready"]

    def scaled() -> list[dict[str, Any]]:
        return [e for e in client.apps.list_events(app["id"])["events"] if e["type"] == "AUTOSCALING"]

    # The event is recorded once the scale returns: after the removed container stopped.
    events = wait_until(lambda: (found := scaled()) and found[0]["autoscaling"]["components"]["web"]["to"] == 1
                        and found, timeout=30)
    changes = [e["autoscaling"]["components"]["web"] for e in reversed(events)]
    assert changes[0]["from"] == 1 and changes[0]["to"] == 2 and changes[0]["triggering_metric"] == "cpu"
    assert changes[-1]["to"] == 1 and all(e["autoscaling"]["phase"] == "SUCCEEDED" for e in events)


def test_an_idle_container_service_sleeps_and_wakes_on_the_next_request(setup: tuple[LiveServer, Path]) -> None:
    server, repo = setup
    client = server.client()
    app = _deploy(server, {"name": unique_name("sleepy"), "services": [_service(
        repo, inactivity_sleep={"after_seconds": 600})]})
    wait_until(lambda: _instances(server, app) == 0, timeout=90)  # 600 s × 0.01 without a request
    assert client.apps.get_health(app["id"])["app_health"]["components"][0]["replicas_desired"] == 0
    answer = httpx.get(f"http://127.0.0.1:{server.ingress_port}/", headers={"host": app["live_domain"]}, timeout=90)
    assert answer.status_code == 200 and answer.text.startswith("ok "), answer.text  # held while one starts
    assert _instances(server, app) == 1

    def changes() -> dict[str, tuple[int, int]]:
        return {c["triggering_metric"]: (c["from"], c["to"]) for e in client.apps.list_events(app["id"])["events"]
                if e["type"] == "AUTOSCALING" for c in e["autoscaling"]["components"].values()}

    assert wait_until(lambda: len(changes()) == 2 and changes(), timeout=30) == {
        "scale_to_zero": (1, 0), "scale_from_zero": (0, 1)}
