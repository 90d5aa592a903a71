"""Issue 13 on the local runtime, with real processes: what pydo and doctl users see of secure
headers, logs and the console of a running app."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import unique_name, wait_deployment, wait_for
from tests.doctl_console import DoctlConsole, exec_url
from tests.e2e.apps import PY_SERVER, make_repo
from tests.live import UNLIMITED, LiveServer


IDLE_SECONDS = 6


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("client-local")
    server = LiveServer(data_dir=root / "data", runtime="local",
                        extra_args=["--console-idle-timeout", str(IDLE_SECONDS), *UNLIMITED]).start()
    yield server, root
    server.stop()


@pytest.fixture(scope="module")
def repo(local: Any) -> Path:
    _, root = local
    return make_repo(root / "web", {"app.py": PY_SERVER, "requirements.txt": "",
                                    "fail.sh": "echo about to fail; exit 4\n"})


def deployed(server: LiveServer, spec: dict[str, Any]) -> dict[str, Any]:
    client = server.client()
    app = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"], timeout=180)
    assert dep["phase"] == "ACTIVE", server.log()
    return client.apps.get(app["id"])["app"]


def test_secure_headers_are_set_and_removed_by_the_ingress(local: Any, repo: Path) -> None:
    server, _ = local
    app = deployed(server, {"name": unique_name("headers"), "services": [{
        "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "run_command": "python app.py"}],
        "ingress": {"secure_header": [
            {"key": "Strict-Transport-Security", "value": "max-age=63072000"},
            {"key": "X-Frame-Options", "value": "DENY"},
            {"key": "Server", "remove_header": True}]}})
    url = f"http://127.0.0.1:{server.ingress_port}/"
    answer = httpx.get(url, headers={"host": app["live_domain"]}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["strict-transport-security"] == "max-age=63072000"
    assert answer.headers["x-frame-options"] == "DENY"
    assert "server" not in answer.headers  # Python's http.server sends one; the ingress removed it
    missing = httpx.get(url + "nothing", headers={"host": app["live_domain"]}, timeout=10)
    assert missing.headers["x-frame-options"] == "DENY"  # the app's own 404 answer gets them too
    server.client().apps.delete(app["id"])


@pytest.fixture(scope="module")
def console_app(local: Any, repo: Path) -> Any:
    server, _ = local
    app = deployed(server, {
        "name": unique_name("console"),
        "envs": [{"key": "TOKEN", "value": "s3cret-value", "type": "SECRET"}],
        "services": [{"name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"},
                      "run_command": "python app.py", "instance_count": 2,
                      "envs": [{"key": "GREETING", "value": "from-the-spec"}]}],
        "jobs": [{"name": "once", "kind": "POST_DEPLOY", "git": {"repo_clone_url": str(repo), "branch": "main"},
                  "run_command": "true"}]})
    yield app
    server.client().apps.delete(app["id"])


def test_doctl_console_runs_a_shell_inside_the_instance(local: Any, console_app: dict[str, Any]) -> None:
    server, _ = local
    answer = exec_url(server, console_app["id"], "web")
    assert answer.status_code == 200, answer.text
    url = answer.json()["url"]
    assert url.startswith("wss://127.0.0.1:") and "token=" in url
    session = DoctlConsole(url, server.ca, width=91, height=37)
    try:
        # The instance's environment (secrets decrypted, PORT) and its working tree.
        session.type('echo "[$GREETING|$TOKEN|${PORT:+port}]"; ls; stty size\n')
        out = session.read_until("[from-the-spec|s3cret-value|port]")
        session.read_until("37 91")  # the resize frame reached the pty
        assert "app.py" in session.read_until("app.py")
        session.resize(120, 40)
        session.type("stty size\n")
        session.read_until("40 120")
        # Job control works: the shell has the pty as its controlling terminal.
        session.type("sleep 30 & echo P$((40+2))=$!\n")  # the echo of what was typed shows no "P42="
        pid = int(session.value_after("P42="))
        assert psutil.pid_exists(pid)
        session.type("exit\n")
        assert session.wait_closed() == 1000  # the shell ended: doctl's clean end
        assert wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")
    finally:
        session.close()
    del out


def test_console_of_a_named_instance_and_a_deployment(local: Any, console_app: dict[str, Any]) -> None:
    server, _ = local
    client = server.client()
    instances = client.apps.get_instances(console_app["id"])["instances"]
    second = next(i["instance_name"] for i in instances if i["instance_alias"] == "web-1")
    deployment = console_app["active_deployment"]["id"]
    answer = exec_url(server, console_app["id"], "web", instance=second, deployment=deployment)
    assert answer.status_code == 200, answer.text
    session = DoctlConsole(answer.json()["url"], server.ca)
    try:
        session.type("echo pid-$PPID-done\n")
        session.read_until("-done")
    finally:
        session.close()
    # pydo's get_exec sends the same request (instance_name as a query parameter).
    assert client.apps.get_exec(console_app["id"], deployment, "web", instance_name=second)["url"].startswith("wss://")
    assert client.apps.get_exec_active_deployment(console_app["id"], "web")["url"].startswith("wss://")


def test_console_urls_are_refused_as_digitalocean_refuses_them(local: Any, console_app: dict[str, Any]) -> None:
    server, _ = local
    app_id = console_app["id"]
    read_only = server.create_token("app:read")
    assert exec_url(server, app_id, "web", token=read_only).status_code == 403  # needs app:access_console
    console_only = server.create_token("app:access_console")
    assert exec_url(server, app_id, "web", token=console_only).status_code == 200
    missing = exec_url(server, app_id, "nope")
    assert missing.status_code == 404 and missing.json()["id"] == "not_found"
    assert exec_url(server, app_id, "web", instance="web-99").status_code == 404
    job = exec_url(server, app_id, "once")
    assert job.status_code == 400 and "only services and workers" in job.json()["message"]
    # One URL, one session: a second dial of the same URL is refused at the handshake.
    url = exec_url(server, app_id, "web").json()["url"]
    DoctlConsole(url, server.ca).close()
    with pytest.raises(Exception, match="403"):
        DoctlConsole(url, server.ca)
    with pytest.raises(Exception, match="403"):
        DoctlConsole(url.split("token=")[0] + "token=forged.token", server.ca)
    # A logs token does not open a console, and a console token reads no logs.
    logs = server.client().apps.get_logs_active_deployment(app_id, "web", type="RUN")
    with pytest.raises(Exception, match="403"):
        DoctlConsole(f"wss://127.0.0.1:{server.api_port}/v2/console?" + logs["historic_urls"][0].split("?")[1],
                     server.ca)
    fresh = exec_url(server, app_id, "web").json()["url"]
    with server.http(anonymous=True) as http:
        assert http.get(f"/v2/logs/history?{fresh.split('?')[1]}").status_code == 401


def test_an_idle_console_is_closed(local: Any, console_app: dict[str, Any]) -> None:
    server, _ = local
    session = DoctlConsole(exec_url(server, console_app["id"], "web").json()["url"], server.ca)
    try:
        session.type("echo hi\n")
        session.read_until("hi")
        # doctl's 30-second keepalives do not count as activity.
        assert session.wait_closed(timeout=IDLE_SECONDS * 10, keepalive_every=1) == 1000
        assert "without activity" in session.output
    finally:
        session.close()


def test_a_console_ends_when_its_instance_is_retired(local: Any, repo: Path) -> None:
    # Failed before: the shell is not a process of the instance's group, so it outlived a redeploy
    # that stopped the instance, still in the old deployment's tree and environment.
    server, _ = local
    app = deployed(server, {"name": unique_name("retire"), "services": [{
        "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "run_command": "python app.py"}]})
    session = DoctlConsole(exec_url(server, app["id"], "web").json()["url"], server.ca)
    try:
        session.type("echo ready-$((6*7))\n")
        session.read_until("ready-42")
        client = server.client()
        dep = client.apps.create_deployment(app["id"], body={"force_build": False})["deployment"]
        assert session.busy_until_closed(timeout=180) == 1000, session.output  # busy: not closed for idleness
        assert "the instance stopped" in session.output
        assert wait_deployment(client, app["id"], dep["id"], timeout=60)["phase"] == "ACTIVE"
    finally:
        session.close()
        server.client().apps.delete(app["id"])


def test_a_one_off_command_on_the_data_dir_leaves_the_servers_apps_running(local: Any,
                                                                         console_app: dict[str, Any]) -> None:
    # Failed before: `shoal token create` makes a runtime of its own on the same data dir, which ended
    # every app process the running server had recorded, taking them for an earlier shoal's leftovers.
    server, _ = local

    def web_pids() -> set[int]:
        return {p.pid for p in psutil.process_iter(["cmdline", "environ"])
                if p.info["cmdline"] == ["python", "app.py"]
                and (p.info["environ"] or {}).get("GREETING") == "from-the-spec"}

    before = wait_for(web_pids)
    server.create_token("app:read")
    time.sleep(1)
    assert web_pids() == before
