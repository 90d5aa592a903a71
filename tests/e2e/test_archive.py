"""Archiving an app (``maintenance.archive``) and custom offline pages, end to end.

A live ``shoal serve --runtime local`` runs real processes; the custom offline page is served over
HTTPS from loopback with a certificate from a shoal local CA, which the server trusts through
``SSL_CERT_FILE``, as an operator would set it.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from azure.core.exceptions import HttpResponseError

from tests.conftest import leaves, unique_name, wait_deployment, wait_for
from tests.e2e.apps import make_repo
from tests.live import LiveServer
from tests.pages import Pages, serve_pages

# A web service and a worker that each write their pid where the test can read it.
WEB = textwrap.dedent('''
    import http.server, os
    open(os.environ["PIDS"] + "/web", "w").write(str(os.getpid()))
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"{os.environ.get('VERSION', 'v1')} up\\n".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
''')
WORKER = 'echo $$ > "$PIDS/worker"\nwhile true; do sleep 0.2; done\n'
PRE = 'echo "pre ran"\necho x >> "$PIDS/pre-deploy-runs"\n'
CUSTOM = "<!doctype html><title>closed</title><h1>Shop closed for the season</h1>\n"
OOPS = "<!doctype html><title>oops</title><h1>Our own error page</h1>\n"
# Answers /ok; a request to /die gets its connection dropped without an answer (a platform error).
FLAKY = textwrap.dedent('''
    import http.server, os, socket
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/die":
                self.request.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.send_response(200)
            self.send_header("content-length", "3")
            self.end_headers()
            self.wfile.write(b"ok\\n")
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
''')


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pages]:
    with serve_pages(tmp_path_factory.mktemp("page-ca"), {"/closed.html": (200, CUSTOM.encode()),
                                                                      "/oops.html": (200, OOPS.encode())}) as served:
        yield served


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, pages: Pages) -> Iterator[tuple[LiveServer, Path]]:
    root = tmp_path_factory.mktemp("archive")
    server = LiveServer(data_dir=root / "data", runtime="local", env={"SSL_CERT_FILE": str(pages.ca)}).start()
    yield server, root
    server.stop()


def ingress(server: LiveServer, app: dict[str, Any], path: str = "/") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.ingress_port}{path}", headers={"host": app["live_domain"]},
                     timeout=10)


def deploy_log(server: LiveServer, client: Any, app_id: str, deployment_id: str) -> str:
    urls = client.apps.get_logs_aggregate(app_id, deployment_id, type="DEPLOY")["historic_urls"]
    with server.http(anonymous=True) as http:
        return http.get(urls[0]).text


def running(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive (the file stays behind when it stops)."""
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().strip())
    try:
        return pid if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE else None
    except psutil.NoSuchProcess:
        return None


def updated(client: Any, app_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    pending = client.apps.update(app_id, body={"spec": spec})["app"]["pending_deployment"]
    dep = wait_deployment(client, app_id, pending["id"], timeout=180)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    return dep


def test_archiving_stops_the_app_and_un_archiving_starts_it_again(local: Any) -> None:
    server, root = local
    client = server.client()
    pids = root / "pids"
    pids.mkdir()
    repo = make_repo(root / "shop", {"web/app.py": WEB, "tasks/worker.sh": WORKER, "tasks/pre.sh": PRE})
    git = {"git": {"repo_clone_url": str(repo), "branch": "main"}}

    def spec(archive: bool) -> dict[str, Any]:
        return {"name": name, "envs": [{"key": "PIDS", "value": str(pids)}],
                "services": [{"name": "web", **git, "source_dir": "web", "run_command": "python3 app.py",
                              "termination": {"drain_seconds": 1, "grace_period_seconds": 5}}],
                "workers": [{"name": "worker", **git, "source_dir": "tasks", "run_command": "sh worker.sh"}],
                "jobs": [{"name": "migrate", "kind": "PRE_DEPLOY", **git, "source_dir": "tasks",
                          "run_command": "sh pre.sh"}],
                "maintenance": {"archive": archive}}

    name = unique_name("shop")
    created = client.apps.create(body={"spec": spec(False)})["app"]
    first = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=180)
    assert first["phase"] == "ACTIVE", first["progress"]
    app = client.apps.get(created["id"])["app"]
    assert ingress(server, app).text == "v1 up\n"
    port = int(re.findall(r"PORT=(\d+)", deploy_log(server, client, app["id"], first["id"]))[0])
    web, worker = running(pids / "web"), wait_for(lambda: running(pids / "worker"))
    assert web and worker

    archiving = updated(client, app["id"], spec(True))
    page = ingress(server, app, "/anything")
    assert page.status_code == 503 and "under maintenance" in page.text and name in page.text
    assert running(pids / "web") is None and running(pids / "worker") is None  # gone once ACTIVE
    with pytest.raises(httpx.ConnectError):  # nothing listens where the service was
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    steps = {(s.get("component_name"), s["name"]): s for s in leaves(archiving["progress"]["steps"])}
    assert steps[("web", "stop")]["status"] == "SUCCESS" and steps[("worker", "stop")]["status"] == "SUCCESS"
    assert steps[("web", "stop")]["message_base"] == "Stopping service: the app is archived"
    assert not any(name == "migrate" for name, _ in steps) and "services" not in archiving  # nothing built or run
    assert (pids / "pre-deploy-runs").read_text().count("x") == 1
    log = deploy_log(server, client, app["id"], archiving["id"])
    assert "The app is archived (maintenance.archive): stopping its components (web, worker, migrate)" in log
    assert "web is stopped: the app is archived" in log and "worker is stopped: the app is archived" in log
    health = client.apps.get_health(app["id"])["app_health"]["components"]
    assert {(c["name"], c["replicas_desired"]) for c in health} == {("web", 0), ("worker", 0)}
    assert client.apps.get_instances(app["id"]).get("instances", []) == []
    with pytest.raises(HttpResponseError, match="archived"):
        client.apps.restart(app["id"], body={})

    updated(client, app["id"], spec(False))
    assert ingress(server, app).text == "v1 up\n"
    again = wait_for(lambda: running(pids / "worker"))
    assert running(pids / "web") not in (None, web) and again != worker
    assert (pids / "pre-deploy-runs").read_text().count("x") == 2


def test_a_custom_offline_page_is_served(local: Any, pages: Pages) -> None:
    server, _ = local
    client = server.client()
    url = pages.url("/closed.html")
    spec = {"name": unique_name("closed"), "maintenance": {"enabled": True, "offline_page_url": url}}
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=60)
    assert dep["phase"] == "ACTIVE"
    app = client.apps.get(created["id"])["app"]
    page = ingress(server, app, "/any/path")
    assert page.status_code == 503 and page.text == CUSTOM
    assert f"serving the offline page fetched from {url}" in deploy_log(server, client, app["id"], dep["id"])


def test_an_offline_page_that_cannot_be_fetched_falls_back_to_the_default(local: Any, pages: Pages) -> None:
    server, _ = local
    client = server.client()
    url = pages.url("/no-such-page.html")
    name = unique_name("fallback")
    created = client.apps.create(body={"spec": {"name": name, "maintenance": {"archive": True,
                                                                              "offline_page_url": url}}})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=60)
    assert dep["phase"] == "ACTIVE"
    app = client.apps.get(created["id"])["app"]
    page = ingress(server, app)
    assert page.status_code == 503 and "under maintenance" in page.text and name in page.text
    assert (f"could not fetch the offline page {url}: it answered HTTP 404; serving the default offline page "
            "instead") in deploy_log(server, client, app["id"], dep["id"])


def test_the_custom_error_page_replaces_the_ingress_error_pages(local: Any, pages: Pages) -> None:
    server, root = local
    client = server.client()
    repo = make_repo(root / "flaky", {"app.py": FLAKY})
    url = pages.url("/oops.html")
    spec = {"name": unique_name("flaky"), "ingress": {"custom_error_page_url": url},
            "services": [{"name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"},
                          "run_command": "python3 app.py"}]}
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=60)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    app = client.apps.get(created["id"])["app"]
    assert ingress(server, app, "/ok").text == "ok\n"  # the app's own answers are untouched
    failed = ingress(server, app, "/die")
    assert failed.status_code == 502 and failed.text == OOPS
    assert f"serving the error page fetched from {url}" in deploy_log(server, client, app["id"], dep["id"])
