"""Issue 13 on the local runtime, with real processes: what pydo and doctl users see of secure
headers, logs and the console of a running app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import unique_name, wait_deployment
from tests.e2e.apps import PY_SERVER, make_repo
from tests.live import LiveServer


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("client-local")
    server = LiveServer(data_dir=root / "data", runtime="local").start()
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
    return client.apps.get(app["id"])["app"]  # type: ignore[no-any-return]


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
