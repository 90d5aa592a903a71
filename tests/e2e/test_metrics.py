"""Metrics, metric alerts, autoscaling and inactivity sleep of real processes run by a real ``shoal serve``
(local runtime, driven by pydo). ``--window-scale 0.01`` turns a TEN_MINUTES window into 6 s and the
minimum inactivity_sleep (600 s) into 6 s; ``--metrics-interval 1`` samples every second."""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_deployment
from tests.e2e.apps import make_repo
from tests.live import LiveServer
from tests.receivers import HttpReceiver, wait_until

SERVICE = textwrap.dedent('''
    import os, sys, threading, time, http.server
    if os.environ.get("BURN"):
        def burn():
            while True:
                pass
        threading.Thread(target=burn, daemon=True).start()
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/slow"):
                time.sleep(0.3)
            if self.path.startswith("/work"):
                end = time.process_time() + 0.05
                while time.process_time() < end:
                    pass
            body = f"ok {os.getpid()}\\n".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    print("listening", flush=True)
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
''')

# A functions project (under fns/): one action that answers, one that raises.
FUNCTIONS = {
    "fns/project.yml": "packages:\n  - name: m\n    actions:\n      - name: ok\n      - name: fail\n",
    "fns/packages/m/ok.py": "def main(args):\n    return {'body': 'fine'}\n",
    "fns/packages/m/fail.py": "def main(args):\n    raise RuntimeError('boom')\n",
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path, HttpReceiver]]:
    root = tmp_path_factory.mktemp("metrics")
    slack = HttpReceiver(respond=lambda request: (200, b"ok")).start()
    server = LiveServer(data_dir=root / "data", runtime="local",
                        extra_args=["--metrics-interval", "1", "--window-scale", "0.01"])
    try:
        server.start()
        yield server, make_repo(root / "repo", {"app.py": SERVICE, "crash.sh": "echo up; sleep 2; exit 1\n",
                                                **FUNCTIONS}), slack
    finally:
        server.stop()
        slack.stop()


def _deploy(server: LiveServer, spec: dict[str, Any]) -> dict[str, Any]:
    client = server.client()
    app = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"], timeout=180)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    return client.apps.get(app["id"])["app"]


def _service(repo: Path, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "git": {"repo_clone_url": str(repo), "branch": "main"}, "run_command": "python app.py",
            **extra}


def _hook(server: LiveServer, app: dict[str, Any], rule: str, slack: HttpReceiver, path: str) -> None:
    client = server.client()
    alert = next(a for a in client.apps.list_alerts(app["id"])["alerts"] if a["spec"]["rule"] == rule)
    client.apps.assign_alert_destinations(app["id"], alert["id"], body={
        "slack_webhooks": [{"url": f"{slack.url}/{path}", "channel": "#ops"}]})


def _texts(slack: HttpReceiver, path: str) -> list[str]:
    return [r.json()["text"] for r in slack.received() if r.path == f"/{path}"]


def test_a_cpu_burning_service_fires_cpu_utilization_after_its_window(
        setup: tuple[LiveServer, Path, HttpReceiver]) -> None:
    server, repo, slack = setup
    alert = {"rule": "CPU_UTILIZATION", "operator": "GREATER_THAN", "value": 20, "window": "TEN_MINUTES"}
    app = _deploy(server, {"name": "burner", "services": [_service(
        repo, "web", envs=[{"key": "BURN", "value": "1"}], alerts=[alert])]})
    _hook(server, app, "CPU_UTILIZATION", slack, "cpu")
    client = server.client()
    started = time.monotonic()
    (text,) = wait_until(lambda: _texts(slack, "cpu"), timeout=90)
    assert time.monotonic() - started >= 3  # not before the window (6 s from the first sample) was seen
    assert "[shoal] CPU utilization: burner" in text and "CPU utilization of web: " in text
    assert "(above 20 % over 10 minutes)" in text
    health = client.apps.get_health(app["id"])["app_health"]["components"][0]
    assert health["cpu_usage_percent"] > 10 and health["memory_usage_percent"] > 0  # one busy thread, a shared box
    now = int(time.time()) + 1  # end is a whole second: the latest sample is after it
    matrix = client.monitoring.get_app_cpu_percentage_metrics(app_id=app["id"], start=str(now - 120), end=str(now))
    (series,) = matrix["data"]["result"]
    assert series["metric"]["app_component"] == "web" and series["metric"]["app_uuid"] == app["id"]
    assert max(float(v) for _, v in series["values"]) > 20
    memory = client.monitoring.get_app_memory_percentage_metrics(app_id=app["id"], app_component="web",
                                                                 start=str(now - 120), end=str(now))
    assert float(memory["data"]["result"][0]["values"][-1][1]) > 0


def _load(url: str, host: str, threads: int, stop: threading.Event, status: int = 200) -> list[threading.Thread]:
    """``threads`` clients sending requests through the ingress one after another until ``stop``."""
    def send() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                assert http.get(url, headers={"host": host}).status_code == status

    workers = [threading.Thread(target=send, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    return workers


def test_traffic_through_the_ingress_fires_requests_per_second_and_a_slow_endpoint_the_p95(
        setup: tuple[LiveServer, Path, HttpReceiver]) -> None:
    server, repo, slack = setup
    app = _deploy(server, {"name": "busy", "services": [_service(repo, "web", alerts=[
        {"rule": "REQUESTS_PER_SECOND", "operator": "GREATER_THAN", "value": 5, "window": "FIVE_MINUTES"},
        {"rule": "REQUEST_DURATION_P95_MS", "operator": "GREATER_THAN", "value": 150, "window": "FIVE_MINUTES"}])]})
    _hook(server, app, "REQUESTS_PER_SECOND", slack, "rps")
    _hook(server, app, "REQUEST_DURATION_P95_MS", slack, "p95")
    base, host = f"http://127.0.0.1:{server.ingress_port}", app["live_domain"]
    stop = threading.Event()
    workers = _load(f"{base}/", host, 2, stop)  # fast answers: many a second, none slow
    try:
        (text,) = wait_until(lambda: _texts(slack, "rps"), timeout=90)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert "[shoal] Requests per second: busy" in text and "Requests per second of web: " in text
    assert "(above 5 req/s over 5 minutes)" in text
    resolved = wait_until(lambda: _texts(slack, "rps")[1:], timeout=90)  # no more traffic: 0 a second
    assert "[shoal] Requests per second resolved: busy" in resolved[0] and "(no longer above 5 req/s" in resolved[0]
    assert _texts(slack, "p95") == []
    stop = threading.Event()
    workers = _load(f"{base}/slow", host, 2, stop)  # each answer takes 0.3 s
    try:
        (text,) = wait_until(lambda: _texts(slack, "p95"), timeout=90)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert "[shoal] Request duration (p95): busy" in text and "P95 request duration of web: " in text
    assert "(above 150 ms over 5 minutes)" in text
    alerts = {a["spec"]["rule"]: a for a in server.client().apps.list_alerts(app["id"])["alerts"]}
    steps = alerts["REQUEST_DURATION_P95_MS"]["progress"]["steps"]
    assert [s["name"] for s in steps] == ["alert-configure-insight-alert", "alert-fired", "notify-slack:#ops"], steps
    assert steps[1]["reason"]["code"] == "REQUEST_DURATION_P95_MS" and steps[2]["status"] == "SUCCESS"


def test_activations_of_a_functions_component_fire_the_functions_rules(
        setup: tuple[LiveServer, Path, HttpReceiver]) -> None:
    server, repo, slack = setup
    client = server.client()
    app = client.apps.create(body={"spec": {"name": "fnalerts", "functions": [{
        "name": "fns", "git": {"repo_clone_url": str(repo), "branch": "main"}, "source_dir": "fns",
        "routes": [{"path": "/fn"}], "alerts": [
            {"rule": "FUNCTIONS_ACTIVATION_COUNT", "operator": "GREATER_THAN", "value": 5, "window": "FIVE_MINUTES"},
            {"rule": "FUNCTIONS_ERROR_COUNT", "operator": "GREATER_THAN", "value": 2, "window": "FIVE_MINUTES"}]}]}})["app"]
    dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"], timeout=420)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    app = client.apps.get(app["id"])["app"]
    _hook(server, app, "FUNCTIONS_ACTIVATION_COUNT", slack, "activations")
    _hook(server, app, "FUNCTIONS_ERROR_COUNT", slack, "errors")
    base, host = f"http://127.0.0.1:{server.ingress_port}/fn/m", app["live_domain"]
    stop = threading.Event()
    workers = _load(f"{base}/ok", host, 1, stop)
    try:
        (text,) = wait_until(lambda: _texts(slack, "activations"), timeout=90)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert "[shoal] Function activations: fnalerts" in text and "Activations of fns: " in text
    assert "(above 5 over 5 minutes)" in text
    assert _texts(slack, "errors") == []  # none failed
    stop = threading.Event()
    workers = _load(f"{base}/fail", host, 1, stop, status=400)
    try:
        (text,) = wait_until(lambda: _texts(slack, "errors"), timeout=90)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert "[shoal] Function errors: fnalerts" in text and "Activation errors of fns: " in text


def test_a_crash_looping_worker_fires_restart_count(setup: tuple[LiveServer, Path, HttpReceiver]) -> None:
    server, repo, slack = setup
    alert = {"rule": "RESTART_COUNT", "operator": "GREATER_THAN", "value": 1, "window": "TEN_MINUTES"}
    app = _deploy(server, {"name": "crasher", "workers": [{
        "name": "loop", "git": {"repo_clone_url": str(repo), "branch": "main"}, "run_command": "sh crash.sh",
        "alerts": [alert]}]})
    _hook(server, app, "RESTART_COUNT", slack, "restarts")
    (text,) = wait_until(lambda: _texts(slack, "restarts"), timeout=120)
    assert "[shoal] Restart count: crasher" in text and "Restarts of loop: " in text and "above 1 over 10" in text
    now = int(time.time()) + 1  # end is a whole second: the latest sample is after it
    counts = server.client().monitoring.get_app_restart_count_metrics_yml(  # pydo 0.44 names it so
        app_id=app["id"], start=str(now - 300), end=str(now))
    assert float(counts["data"]["result"][0]["values"][-1][1]) >= 2


def test_an_autoscaled_service_under_load_scales_up_and_back_down(
        setup: tuple[LiveServer, Path, HttpReceiver]) -> None:
    server, repo, _ = setup
    client = server.client()
    app = _deploy(server, {"name": "scaled", "alerts": [{"rule": "AUTOSCALE_SUCCEEDED"}], "services": [_service(
        repo, "web", instance_size_slug="apps-d-1vcpu-0.5gb",
        autoscaling={"min_instance_count": 1, "max_instance_count": 3, "metrics": {"cpu": {"percent": 20}}})]})
    url, host = f"http://127.0.0.1:{server.ingress_port}/work", app["live_domain"]

    def instances() -> int:
        return len(client.apps.get_instances(app["id"])["instances"])

    assert instances() == 1
    stop = threading.Event()
    answers: list[int] = []

    def load() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                answers.append(http.get(url, headers={"host": host}).status_code)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: instances() >= 2, timeout=90)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert answers and set(answers) == {200}  # nobody saw the scaling
    wait_until(lambda: instances() == 1, timeout=120)
    health = client.apps.get_health(app["id"])["app_health"]["components"][0]
    assert health["replicas_desired"] == 1 == health["replicas_ready"]

    def scaled() -> list[dict[str, Any]]:
        return [e for e in client.apps.list_events(app["id"])["events"] if e["type"] == "AUTOSCALING"]

    events = wait_until(lambda: (found := scaled()) and found[0]["autoscaling"]["components"]["web"]["to"] == 1
                        and found, timeout=30)
    changes = [e["autoscaling"]["components"]["web"] for e in reversed(events)]
    assert changes[0]["from"] == 1 and changes[0]["to"] >= 2 and changes[0]["triggering_metric"] == "cpu"
    assert changes[-1]["to"] == 1 and all(e["autoscaling"]["phase"] == "SUCCEEDED" for e in events)
    assert all(e["deployment_id"] == app["active_deployment"]["id"] for e in events)
    logs = client.apps.get_logs_active_deployment(app["id"], "web", type="AUTOSCALE_EVENT")
    with server.http(anonymous=True) as http:
        assert "scaling web from 1 to" in http.get(logs["historic_urls"][0]).text
    fired = next(a for a in client.apps.list_alerts(app["id"])["alerts"] if a["spec"]["rule"] == "AUTOSCALE_SUCCEEDED")
    assert any(s["name"] == "alert-fired" for s in fired["progress"]["steps"])


def test_an_idle_service_sleeps_and_wakes_on_the_next_request(setup: tuple[LiveServer, Path, HttpReceiver]) -> None:
    server, repo, _ = setup
    client = server.client()
    app = _deploy(server, {"name": "sleepy", "services": [_service(
        repo, "web", inactivity_sleep={"after_seconds": 600})]})

    def instances() -> int:
        return len(client.apps.get_instances(app["id"])["instances"])

    wait_until(lambda: instances() == 0, timeout=90)  # 600 s × 0.01 without a request
    assert client.apps.get_health(app["id"])["app_health"]["components"][0]["replicas_desired"] == 0
    answer = httpx.get(f"http://127.0.0.1:{server.ingress_port}/", headers={"host": app["live_domain"]}, timeout=60)
    assert answer.status_code == 200 and answer.text.startswith("ok "), answer.text  # held while one starts
    assert instances() == 1

    def changes() -> dict[str, tuple[int, int]]:
        return {c["triggering_metric"]: (c["from"], c["to"]) for e in client.apps.list_events(app["id"])["events"]
                if e["type"] == "AUTOSCALING" for c in e["autoscaling"]["components"].values()}

    assert wait_until(lambda: len(changes()) == 2 and changes(), timeout=30) == {
        "scale_to_zero": (1, 0), "scale_from_zero": (0, 1)}
