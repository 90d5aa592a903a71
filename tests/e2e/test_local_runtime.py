"""The local runtime end to end: real git repos, real builds, real processes, through pydo and the ingress."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import leaves, unique_name, wait_deployment, wait_for
from tests.e2e.apps import PY_SERVER, commit, make_repo, monorepo
from tests.live import LiveServer


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("local")
    server = LiveServer(data_dir=root / "data", runtime="local").start()
    yield server, root
    server.stop()


def ingress(server: LiveServer, app: dict[str, Any], path: str = "/", **kwargs: Any) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.ingress_port}{path}", headers={"host": app["live_domain"]},
                     timeout=10, **kwargs)


def source(repo: Path, source_dir: str) -> dict[str, Any]:
    return {"git": {"repo_clone_url": str(repo), "branch": "main"}, "source_dir": source_dir}


def history(server: LiveServer, answer: dict[str, Any]) -> str:
    with server.http(anonymous=True) as http:
        return http.get(answer["historic_urls"][0]).text


def test_every_component_kind_runs(local: Any) -> None:
    server, root = local
    client = server.client()
    repo = monorepo(root / "mono")
    marks = root / "marks"
    marks.mkdir()
    env = [{"key": "MARKS", "value": str(marks)}]
    spec = {
        "name": unique_name("mono"),
        "envs": env,
        "services": [
            {"name": "web", **source(repo, "web"), "envs": [{"key": "GREETING", "value": "from-spec"}],
             "health_check": {"http_path": "/health", "period_seconds": 1}},
            {"name": "node", **source(repo, "node"), "http_port": 8181},
        ],
        "static_sites": [{"name": "site", **source(repo, "site"), "error_document": "404.html"}],
        "workers": [{"name": "worker", **source(repo, "tasks"), "run_command": "sh worker.sh"}],
        "jobs": [
            {"name": "migrate", "kind": "PRE_DEPLOY", **source(repo, "tasks"), "run_command": "sh mark.sh pre"},
            {"name": "notify", "kind": "POST_DEPLOY", **source(repo, "tasks"), "run_command": "sh mark.sh post"},
            {"name": "tick", "kind": "SCHEDULED", **source(repo, "tasks"), "run_command": "sh mark.sh cron",
             "schedule": {"cron": "* * * * *", "time_zone": "Europe/Amsterdam"}},
        ],
        "ingress": {"rules": [
            {"match": {"path": {"prefix": "/node"}}, "component": {"name": "node"}},
            {"match": {"path": {"prefix": "/site"}}, "component": {"name": "site"}},
            {"match": {"path": {"prefix": "/"}}, "component": {"name": "web"}},
        ]},
    }
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=180)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    assert len(dep["services"][0]["source_commit_hash"]) == 40
    app = client.apps.get(created["id"])["app"]
    assert app["live_url"]

    assert ingress(server, app, "/hello?x=1").text == "v1 from-spec /hello?x=1\n"
    assert ingress(server, app, "/node/deep/path").text == "node says hi /deep/path\n"  # prefix stripped
    assert "static home" in ingress(server, app, "/site").text
    assert "about" in ingress(server, app, "/site/about/").text
    missing = ingress(server, app, "/site/nope")
    assert missing.status_code == 404 and "custom not found" in missing.text
    # PRE_DEPLOY ran before POST_DEPLOY; the worker leaves marks while it runs.
    assert (marks / "pre").read_text() < (marks / "post").read_text()
    wait_for(lambda: (marks / "worker").exists() and len((marks / "worker").read_text().split()) >= 2, timeout=20)

    build = client.apps.get_logs(created["id"], dep["id"], "web", type="BUILD")
    assert "=> Build complete" in history(server, build)
    # Run logs reach the store a moment after the line is printed (they are written in batches).
    def run_logs() -> str:
        return history(server, client.apps.get_logs_active_deployment(created["id"], "web", type="RUN"))

    wait_for(lambda: "served /hello" in run_logs(), timeout=10)
    assert run_logs().startswith("web ")
    deploy = history(server, client.apps.get_logs_aggregate(created["id"], dep["id"], type="DEPLOY"))
    assert "pre ran" in deploy and "post ran" in deploy

    # The scheduled job runs on its minute, as a job invocation with logs.
    invocation = wait_for(lambda: next((i for i in client.apps.list_job_invocations(
        created["id"], job_names=["tick"])["job_invocations"] if i["phase"] == "SUCCEEDED"), None), timeout=90)
    assert invocation["trigger"]["type"] == "SCHEDULED" and (marks / "cron").exists()
    assert invocation["trigger"]["scheduled"]["schedule"]["time_zone"] == "Europe/Amsterdam"


def test_failed_health_check_keeps_the_old_version_and_redeploys_without_downtime(local: Any) -> None:
    server, root = local
    client = server.client()
    repo = monorepo(root / "zero")
    sick = root / "sick-flag"
    name = unique_name("zd")

    def spec(version: str) -> dict[str, Any]:
        return {"name": name, "services": [{
            "name": "web", **source(repo, "web"), "instance_count": 2, "instance_size_slug": "apps-s-1vcpu-1gb",
            "envs": [{"key": "VERSION", "value": version}, {"key": "SICK_FLAG", "value": str(sick)}],
            "health_check": {"http_path": "/health", "period_seconds": 1, "failure_threshold": 3},
            "termination": {"drain_seconds": 1, "grace_period_seconds": 5}}]}

    created = client.apps.create(body={"spec": spec("v1")})["app"]
    wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=180)
    app = client.apps.get(created["id"])["app"]
    assert ingress(server, app).text.startswith("v1")

    # A load loop runs through a healthy redeploy and sees no failed request.
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                try:
                    r = http.get(f"http://127.0.0.1:{server.ingress_port}/", headers={"host": app["live_domain"]})
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:80]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    loop = threading.Thread(target=load)
    loop.start()
    second = client.apps.update(created["id"], body={"spec": spec("v2")})["app"]["pending_deployment"]
    assert wait_deployment(client, created["id"], second["id"], timeout=180)["phase"] == "ACTIVE"
    wait_for(lambda: ingress(server, app).text.startswith("v2"))
    time.sleep(2.5)  # through the drain and stop of the v1 instances
    stop.set()
    loop.join()
    assert failures == []

    # v3 never passes readiness: ERROR with ContainerHealthChecksFailed, v2 keeps answering.
    sick.write_text("sick")
    try:
        third = client.apps.update(created["id"], body={"spec": spec("v3")})["app"]["pending_deployment"]
        failed = wait_deployment(client, created["id"], third["id"], timeout=180)
    finally:
        sick.unlink()
    assert failed["phase"] == "ERROR"
    reasons = [s.get("reason", {}).get("code") for s in leaves(failed["progress"]["steps"])]
    assert "ContainerHealthChecksFailed" in reasons
    assert ingress(server, app).text.startswith("v2")
    assert client.apps.get(created["id"])["app"]["active_deployment"]["id"] == second["id"]



def _instance_pids(server: LiveServer, marker: str, app_id: str) -> list[int]:
    """Processes of one app's instances (their working dir is inside that app's builds)."""
    assert server.process is not None
    found = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if marker in " ".join(child.cmdline()) and app_id in child.cwd():
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def test_a_killed_instance_restarts_and_the_app_keeps_answering(local: Any) -> None:
    server, root = local
    client = server.client()
    repo = monorepo(root / "crashy")
    spec = {"name": unique_name("crash"), "services": [{
        "name": "web", **source(repo, "web"), "instance_count": 2, "instance_size_slug": "apps-s-1vcpu-1gb",
        "health_check": {"http_path": "/health", "period_seconds": 1}}]}
    created = client.apps.create(body={"spec": spec})["app"]
    wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=180)
    app = client.apps.get(created["id"])["app"]
    before = _instance_pids(server, "app.py", created["id"])
    assert len(before) >= 2
    os.kill(before[0], signal.SIGKILL)
    for _ in range(10):  # the other instance takes the traffic meanwhile
        assert ingress(server, app).status_code == 200
    restarted = wait_for(lambda: history(server, client.apps.get_logs_active_deployment(
        created["id"], "web", type="RUN_RESTARTED")), timeout=20)
    assert "exited with status 137" in restarted
    wait_for(lambda: len(_instance_pids(server, "app.py", created["id"])) >= len(before), timeout=30)


def test_a_new_commit_is_deployed_and_an_unchanged_build_is_reused(local: Any) -> None:
    server, root = local
    client = server.client()
    repo = monorepo(root / "evolve")
    name = unique_name("evo")
    spec = {"name": name, "services": [{"name": "web", **source(repo, "web")}]}
    created = client.apps.create(body={"spec": spec})["app"]
    first = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=180)
    app = client.apps.get(created["id"])["app"]
    again = client.apps.create_deployment(created["id"], body={})["deployment"]
    assert wait_deployment(client, created["id"], again["id"], timeout=120)["phase"] == "ACTIVE"
    build_log = history(server, client.apps.get_logs(created["id"], again["id"], "web", type="BUILD"))
    assert "PreviousBuildReused" in build_log

    sha = commit(repo, "v2", {"web/app.py": PY_SERVER.replace('"v1"', '"v2"')})
    update = client.apps.create_deployment(created["id"], body={})["deployment"]
    done = wait_deployment(client, created["id"], update["id"], timeout=120)
    assert done["services"][0]["source_commit_hash"] == sha != first["services"][0]["source_commit_hash"]
    assert ingress(server, app).text.startswith("v2")


def test_sources_that_need_a_container_engine_fail_with_a_clear_reason(local: Any) -> None:
    server, _ = local
    client = server.client()
    spec = {"name": unique_name("img"), "services": [{
        "name": "web", "image": {"registry_type": "DOCKER_HUB", "registry": "library", "repository": "nginx"}}]}
    created = client.apps.create(body={"spec": spec})["app"]
    failed = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    assert failed["phase"] == "ERROR"
    reason = next(s["reason"] for s in leaves(failed["progress"]["steps"]) if s.get("reason"))
    assert "container engine" in reason["message"]


def test_stopping_shoal_leaves_no_process_behind(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data", runtime="local").start()
    client = server.client()
    repo = monorepo(tmp_path / "repo")
    spec = {"name": unique_name("bye"), "services": [{"name": "web", **source(repo, "web")}],
            "workers": [{"name": "bg", **source(repo, "tasks"), "run_command": "sh worker.sh",
                         "envs": [{"key": "MARKS", "value": str(tmp_path)}]}]}
    created = client.apps.create(body={"spec": spec})["app"]
    wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=180)
    assert server.process is not None
    children = psutil.Process(server.process.pid).children(recursive=True)
    assert len(children) >= 2
    assert server.stop() == 0
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []


# Answers with its own port; its health check fails while a flag file named after that port exists.
PORT_SERVER = '''
import http.server, os, pathlib
PORT = os.environ["PORT"]
FLAGS = pathlib.Path(os.environ["FLAGS"])

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        sick = self.path == "/health" and (FLAGS / f"sick-{PORT}").exists()
        body = PORT.encode()
        self.send_response(503 if sick else 200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler).serve_forever()
'''


def test_an_instance_failing_its_checks_gets_no_traffic_until_they_pass(local: Any) -> None:
    server, root = local
    client = server.client()
    flags = root / "flags"
    flags.mkdir()
    repo = make_repo(root / "ports", {"web/app.py": PORT_SERVER})
    spec = {"name": unique_name("ready"), "services": [{
        "name": "web", **source(repo, "web"), "run_command": "python3 app.py", "instance_count": 2,
        "instance_size_slug": "apps-s-1vcpu-1gb", "envs": [{"key": "FLAGS", "value": str(flags)}],
        "health_check": {"http_path": "/health", "period_seconds": 1, "failure_threshold": 1,
                         "success_threshold": 1}}]}
    created = client.apps.create(body={"spec": spec})["app"]
    wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=180)
    app = client.apps.get(created["id"])["app"]

    def served(count: int) -> set[str]:
        answers = [ingress(server, app) for _ in range(count)]
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        return {a.text for a in answers}

    ports = served(6)
    assert len(ports) == 2  # round robin over both instances
    sick, well = sorted(ports)
    (flags / f"sick-{sick}").touch()
    wait_for(lambda: served(6) == {well}, timeout=30, interval=0.2)
    assert served(20) == {well}  # out of the rotation, not merely unlucky
    (flags / f"sick-{sick}").unlink()
    wait_for(lambda: served(6) == {sick, well}, timeout=30, interval=0.2)


def test_an_autoscaled_service_runs_its_minimum_and_the_api_says_so(local: Any) -> None:
    """The runtime, /instances and /health agree on the instance count of an autoscaled component
    (the spec has no instance_count; the minimum is what runs)."""
    server, root = local
    client = server.client()
    repo = make_repo(root / "autoscaled", {"server.py": PY_SERVER})
    spec = {"name": unique_name("scaled"), "services": [{
        "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "run_command": "python3 server.py",
        "instance_size_slug": "apps-d-1vcpu-0.5gb",
        "autoscaling": {"min_instance_count": 2, "max_instance_count": 4, "metrics": {"cpu": {"percent": 70}}}}]}
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=120)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    instances = client.apps.get_instances(created["id"])["instances"]
    assert sorted(i["instance_alias"] for i in instances) == ["web-0", "web-1"]
    health = client.apps.get_health(created["id"])["app_health"]["components"]
    assert [(c["name"], c["replicas_desired"], c["replicas_ready"], c["state"]) for c in health] == \
        [("web", 2, 2, "HEALTHY")]
    client.apps.delete(created["id"])
