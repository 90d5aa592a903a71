"""The local runtime when things go wrong: rollbacks, crashes of shoal itself, ports taken by
others, instances that die before they are ready. Real git repos, real builds, real processes,
through pydo and the ingress."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import unique_name, wait_deployment, wait_for
from tests.e2e.apps import commit, make_repo
from tests.live import LiveServer

VERSIONED = textwrap.dedent('''
    import os, http.server
    VERSION = open("version.txt").read().strip()
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"{VERSION} {os.getpid()}\\n".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    print(f"serving {VERSION} on {os.environ['PORT']}", flush=True)
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
''')


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("hardening")
    server = LiveServer(data_dir=root / "data", runtime="local").start()
    yield server, root
    server.stop()


def ingress(server: LiveServer, host: str, path: str = "/") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.ingress_port}{path}", headers={"host": host}, timeout=10)


def history(server: LiveServer, answer: dict[str, Any]) -> str:
    with server.http(anonymous=True) as http:
        return http.get(answer["historic_urls"][0]).text


def versioned_repo(path: Path) -> tuple[Path, str]:
    repo = make_repo(path, {"app.py": VERSIONED, "version.txt": "A\n", "requirements.txt": ""})
    return repo, commit(repo, "A", {"version.txt": "A\n", "Procfile": "web: python app.py\n"})


def test_a_rollback_deploys_the_earlier_commit_and_reuses_its_build(local: Any) -> None:
    server, root = local
    client = server.client()
    repo, first = versioned_repo(root / "rollback")
    spec = {"name": unique_name("rb"), "services": [{"name": "web", "git": {"repo_clone_url": str(repo),
                                                                              "branch": "main"}}]}
    created = client.apps.create(body={"spec": spec})["app"]
    v1 = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=180)
    assert v1["phase"] == "ACTIVE" and v1["services"][0]["source_commit_hash"] == first
    host = client.apps.get(created["id"])["app"]["live_domain"]
    assert ingress(server, host).text.startswith("A ")

    second = commit(repo, "B", {"version.txt": "B\n"})
    v2 = client.apps.create_deployment(created["id"], body={})["deployment"]
    v2 = wait_deployment(client, created["id"], v2["id"], timeout=180)
    assert v2["phase"] == "ACTIVE" and v2["services"][0]["source_commit_hash"] == second
    assert ingress(server, host).text.startswith("B ")

    rollback = client.apps.create_rollback(created["id"], body={"deployment_id": v1["id"]})["deployment"]
    done = wait_deployment(client, created["id"], rollback["id"], timeout=180)
    assert done["phase"] == "ACTIVE", done["progress"]
    assert done["services"][0]["source_commit_hash"] == first
    assert ingress(server, host).text.startswith("A ")
    build = history(server, client.apps.get_logs(created["id"], done["id"], "web", type="BUILD"))
    assert "PreviousBuildReused" in build and first[:7] in build and second[:7] not in build
