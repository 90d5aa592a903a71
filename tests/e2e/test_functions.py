"""Functions components end to end: DigitalOcean-shaped projects in real git repos, deployed through pydo
to ``shoal serve --runtime local`` next to a service and a static site, answering through the ingress."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import leaves, unique_name, wait_deployment, wait_for
from tests.e2e.apps import PY_SERVER, commit, make_repo
from tests.e2e.functions_apps import PY_HELLO, functions_component, functions_project
from tests.live import LiveServer, free_port

ORIGIN = "https://shop.example.com"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("functions")
    server = LiveServer(data_dir=root / "data", runtime="local").start()
    yield server, root
    server.stop()


def _history(server: LiveServer, answer: dict[str, Any]) -> str:
    with server.http(anonymous=True) as http:
        return http.get(answer["historic_urls"][0]).text


@pytest.fixture(scope="module")
def deployed(local: Any) -> tuple[LiveServer, dict[str, Any], Path]:
    """One app: a Python service at /api, a static site at /, the functions project at /fn with CORS."""
    server, root = local
    repo = make_repo(root / "repo", {
        "web/app.py": PY_SERVER, "web/requirements.txt": "", "web/Procfile": "web: python app.py\n",
        "site/index.html": "<h1>static home</h1>\n",
        **functions_project("fns"),
    })
    spec = {
        "name": unique_name("fns"),
        "services": [{"name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "source_dir": "web",
                      # Not 8080: another shoal on this machine may hold (or race for) the default port.
                      "http_port": free_port(), "envs": [{"key": "GREETING", "value": "beside-functions"}],
                      "routes": [{"path": "/api"}]}],
        "static_sites": [{"name": "site", "git": {"repo_clone_url": str(repo), "branch": "main"},
                          "source_dir": "site", "routes": [{"path": "/"}]}],
        "functions": [functions_component(str(repo), cors={
            "allow_origins": [{"exact": ORIGIN}], "allow_methods": ["GET", "POST"], "allow_headers": ["X-Custom"],
            "expose_headers": ["x-openwhisk-activation-id"], "max_age": "1h"})],
    }
    client = server.client()
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=420)
    assert dep["phase"] == "ACTIVE", (json.dumps(dep["progress"])[:3000], server.log()[-3000:])
    return server, client.apps.get(created["id"])["app"], repo


def _get(server: LiveServer, app: dict[str, Any], path: str, **kwargs: Any) -> httpx.Response:
    headers = {"host": app["live_domain"], **kwargs.pop("headers", {})}
    return httpx.request(kwargs.pop("method", "GET"), f"http://127.0.0.1:{server.ingress_port}{path}",
                         headers=headers, timeout=30, **kwargs)


@pytest.mark.timeout(600)
def test_python_and_node_hello_read_name_from_the_query_and_from_a_json_body(deployed: Any) -> None:
    server, app, _ = deployed
    for action, runtime_header in (("hello", "x-worker-pid"), ("hellojs", "x-runtime")):
        by_query = _get(server, app, f"/fn/sample/{action}?name=Ann")
        assert by_query.status_code == 200, by_query.text
        assert by_query.text == "Hello Ann!"
        assert by_query.headers["content-type"] == "text/html; charset=UTF-8"
        assert len(by_query.headers["x-openwhisk-activation-id"]) == 32
        assert runtime_header in by_query.headers
        by_body = _get(server, app, f"/fn/sample/{action}", method="POST", json={"name": "Bob"})
        assert (by_body.status_code, by_body.text) == (200, "Hello Bob!")
        assert _get(server, app, f"/fn/sample/{action}").text == "Hello stranger!"
    # Warm: the same Python worker answers again.
    pids = {_get(server, app, "/fn/sample/hello").headers["x-worker-pid"] for _ in range(3)}
    assert len(pids) == 1
    # The service and the static site answer beside the functions.
    assert _get(server, app, "/api/x").text == "v1 beside-functions /x\n"
    assert "static home" in _get(server, app, "/").text


@pytest.mark.timeout(600)
def test_an_action_with_a_requirements_txt_dependency(deployed: Any) -> None:
    server, app, _ = deployed
    answer = _get(server, app, "/fn/sample/jokes")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["version"] == "0.8.3" and body["joke"]


@pytest.mark.timeout(600)
def test_an_action_over_its_timeout_gets_openwhisks_error_and_a_run_log_line(deployed: Any) -> None:
    server, app, _ = deployed
    answer = _get(server, app, "/fn/sample/slow")
    assert answer.status_code == 400
    activation = answer.headers["x-openwhisk-activation-id"]
    assert answer.json() == {"code": activation, "error": "There was an error processing your request."}
    client = server.client()

    def logged() -> str | None:
        text = _history(server, client.apps.get_logs_active_deployment(app["id"], "fns", type="RUN"))
        return text if activation in text else None

    text = wait_for(logged, timeout=20)
    assert f"sample/slow activation {activation}: The action exceeded its time limits of 1000 milliseconds." in text
    assert "slow started" in text and "Hello Ann!" in text  # what handlers print is in the RUN logs
    # A fresh worker answers after the killed one.
    assert _get(server, app, "/fn/sample/slow?seconds=0").text == "finished"


@pytest.mark.timeout(600)
def test_parameters_environment_and_the_web_contract(deployed: Any) -> None:
    server, app, _ = deployed
    answer = _get(server, app, "/fn/sample/greet/extra/path?name=Ann")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["greeting"] == "Howdy Ann!"  # ${GREETING} from the component's envs, punctuation bound
    assert body["method"] == "get" and body["path"] == "/extra/path"
    assert body["activation"] == answer.headers["x-openwhisk-activation-id"]
    assert 0 < body["remaining_ms"] <= 3000
    # A bound parameter cannot be set by a request (DigitalOcean deploys functions final).
    refused = _get(server, app, "/fn/sample/greet?punctuation=?")
    assert refused.status_code == 400
    assert refused.json()["error"] == "Request defines parameters that are not allowed (e.g., reserved properties)."
    # Non-web actions and missing ones are not routed.
    for path in ("/fn/sample/private", "/fn/sample/nope", "/fn/nothing"):
        missing = _get(server, app, path)
        assert missing.status_code == 404, path
        assert missing.json()["error"] == "The requested resource does not exist."


@pytest.mark.timeout(600)
def test_the_components_cors_applies_to_its_functions(deployed: Any) -> None:
    server, app, _ = deployed
    allowed = _get(server, app, "/fn/sample/hello?name=C", headers={"origin": ORIGIN})
    assert allowed.text == "Hello C!"
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "x-openwhisk-activation-id" in allowed.headers["access-control-expose-headers"]
    preflight = _get(server, app, "/fn/sample/hello", method="OPTIONS", headers={
        "origin": ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "X-Custom"})
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-max-age"] == "3600"
    # Another origin gets no CORS grant: not the ingress's, and not OpenWhisk's permissive default.
    other = _get(server, app, "/fn/sample/hello", headers={"origin": "https://evil.example"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


@pytest.mark.timeout(300)
def test_project_problems_fail_the_build_with_their_file_and_path(local: Any) -> None:
    server, root = local
    repo = make_repo(root / "broken", {
        "fns/project.yml": "packages:\n  - name: sample\n    actions:\n      - name: hello\n"
                           "        limits: {timeout: 5}\n      - name: ghost\n",
        "fns/packages/sample/hello.py": "def main(args):\n    return {}\n",
    })
    client = server.client()
    spec = {"name": unique_name("badfn"), "functions": [
        {"name": "fns", "git": {"repo_clone_url": str(repo), "branch": "main"}, "source_dir": "fns",
         "routes": [{"path": "/"}]}]}
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=180)
    assert dep["phase"] == "ERROR"
    reasons = [s["reason"] for s in leaves(dep["progress"]["steps"]) if s.get("reason")]
    assert reasons and reasons[0]["code"] == "BuildJobFailed"
    message = reasons[0]["message"]
    assert "project.yml: packages[0].actions[0].limits.timeout: must be between 100 and 900000 milliseconds" in message
    assert "project.yml: packages[0].actions[1]: no file or directory packages/sample/ghost" in message
    client.apps.delete(created["id"])



@pytest.mark.timeout(600)
def test_a_new_commit_is_served_without_a_failed_request_and_the_old_gateway_stops(deployed: Any) -> None:
    """Last in this module: it changes the shared app."""
    server, app, repo = deployed
    client = server.client()
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30, headers={"host": app["live_domain"]}) as http:
            while not stop.is_set():
                try:
                    answer = http.get(f"http://127.0.0.1:{server.ingress_port}/fn/sample/hello?name=Z")
                    if answer.status_code != 200 or answer.text not in ("Hello Z!", "Hi Z!"):
                        failures.append(f"{answer.status_code} {answer.text[:80]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    commit(repo, "friendlier", {"fns/packages/sample/hello/hello.py": PY_HELLO.replace('"Hello "', '"Hi "')})
    loop = threading.Thread(target=load)
    loop.start()
    try:
        second = client.apps.create_deployment(app["id"], body={"force_build": False})["deployment"]
        done = wait_deployment(client, app["id"], second["id"], timeout=420)
        assert done["phase"] == "ACTIVE", json.dumps(done["progress"])[:2000]
        wait_for(lambda: _get(server, app, "/fn/sample/hello?name=Z").text == "Hi Z!", timeout=30)
        time.sleep(2)  # through the stop of the old gateway
    finally:
        stop.set()
        loop.join()
    assert failures == []

    def gateways() -> list[int]:
        assert server.process is not None
        found = []
        for child in psutil.Process(server.process.pid).children(recursive=True):
            try:
                if "shoal.runtime.functions.gateway" in " ".join(child.cmdline()) and child.status() != "zombie":
                    found.append(child.pid)
            except psutil.Error:
                continue
        return found

    wait_for(lambda: len(gateways()) == 1, timeout=30)  # the old deployment's gateway is stopped
    deploy_log = _history(server, client.apps.get_logs(app["id"], second["id"], "fns", type="DEPLOY"))
    assert "functions gateway of fns is ready" in deploy_log


@pytest.mark.timeout(600)
def test_after_shoal_is_killed_its_gateway_goes_and_the_restarted_shoal_serves_the_functions_again(
        tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data", runtime="local").start()
    try:
        repo = make_repo(tmp_path / "repo", {"fns/packages/sample/hello/hello.py": PY_HELLO})
        client = server.client()
        spec = {"name": unique_name("fnkill"), "functions": [
            {"name": "fns", "git": {"repo_clone_url": str(repo), "branch": "main"}, "source_dir": "fns",
             "routes": [{"path": "/"}]}]}
        created = client.apps.create(body={"spec": spec})["app"]
        dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=300)
        assert dep["phase"] == "ACTIVE"
        app = client.apps.get(created["id"])["app"]
        first = _get(server, app, "/sample/hello?name=K")
        assert first.text == "Hello K!"
        worker = int(first.headers["x-worker-pid"])
        gateway = psutil.Process(worker).ppid()

        server.kill()

        def gone(pid: int) -> bool:
            return not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"

        wait_for(lambda: gone(gateway) and gone(worker), timeout=30)  # nothing of it is left running
        server.start()
        again = wait_for(lambda: (r := _get(server, app, "/sample/hello?name=K")).status_code == 200 and r, timeout=120)
        assert again.text == "Hello K!" and int(again.headers["x-worker-pid"]) != worker
    finally:
        server.stop()
