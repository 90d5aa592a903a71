"""godo's database routes of an app against a real server on the process runtime: the connection
details a user connects with, a password reset that redeploys, and the trusted-sources toggle.
Requests are shaped as godo sends them (its options struct for trusted sources has no json tags)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import unique_name, wait_deployment, wait_for
from tests.e2e.apps import make_repo
from tests.live import LiveServer

pytestmark = pytest.mark.postgres

WEB = textwrap.dedent('''
    import os, http.server
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = os.environ["DATABASE_URL"].encode()
            self.send_response(200); self.send_header("content-length", str(len(data))); self.end_headers()
            self.wfile.write(data)
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
''')
GODO = {"User-Agent": "godo/1.130.0", "Content-Type": "application/json", "Accept": "application/json"}


@pytest.fixture
def app(tmp_path: Path) -> Any:
    repo = make_repo(tmp_path / "repo", {"app.py": WEB})
    server = LiveServer(data_dir=tmp_path / "data", runtime="local").start()
    try:
        client = server.client()
        spec = {"name": unique_name("dbroutes"), "databases": [{"name": "db", "engine": "PG"}],
                "services": [{"name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"},
                              "run_command": "python3 app.py",
                              "envs": [{"key": "DATABASE_URL", "value": "${db.DATABASE_URL}"}]}]}
        created = client.apps.create(body={"spec": spec})["app"]
        dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=240)
        assert dep["phase"] == "ACTIVE", dep["progress"]
        yield server, client.apps.get(created["id"])["app"]
    finally:
        server.stop()


def _served_url(server: LiveServer, host: str) -> str:
    def attempt() -> str | None:
        try:
            answer = httpx.get(f"http://127.0.0.1:{server.ingress_port}/", headers={"host": host}, timeout=20)
        except httpx.HTTPError:
            return None
        return answer.text if answer.status_code == 200 else None

    return str(wait_for(attempt, timeout=120, interval=0.5))


def _details(http: httpx.Client, app_id: str) -> list[dict[str, Any]]:
    answer = http.get(f"/v2/apps/{app_id}/database_connection_details", headers=GODO)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["connection_details"]
    return found


def test_connection_details_connect_and_a_password_reset_redeploys_with_the_new_one(app: Any) -> None:
    server, created = app
    app_id, host = created["id"], created["live_domain"]
    with server.http() as http:
        (db,) = _details(http, app_id)
        assert {k: db[k] for k in ("component_name", "host", "username", "database_name")} == \
            {"component_name": "db", "host": "127.0.0.1", "username": "db", "database_name": "db"}
        assert db["database_url"] == _served_url(server, host)  # what the app was given
        with psycopg.connect(db["database_url"], connect_timeout=5) as conn:
            conn.execute("CREATE TABLE kept (id int)")
            conn.execute("INSERT INTO kept VALUES (42)")

        answer = http.post(f"/v2/apps/{app_id}/components/db/reset_password", headers=GODO)  # godo sends no body
        assert answer.status_code == 200, answer.text
        dep = answer.json()["deployment"]
        assert dep["cause_details"]["digitalocean_user_action"]["name"] == "RESET_DATABASE_PASSWORD"
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(db["database_url"], connect_timeout=5).close()
        assert wait_deployment(server.client(), app_id, dep["id"], timeout=240)["phase"] == "ACTIVE"

        (new,) = _details(http, app_id)
        assert new["password"] != db["password"] and new["database_name"] == db["database_name"]
        assert wait_for(lambda: _served_url(server, host) == new["database_url"], timeout=60, interval=0.5)
        with psycopg.connect(new["database_url"], connect_timeout=5) as conn:
            assert conn.execute("SELECT id FROM kept").fetchall() == [(42,)]

    server.stop()  # after a restart the details (and the password) are the same
    server.start()
    with server.http() as http:
        assert wait_for(lambda: _details(http, app_id), timeout=120, interval=0.5) == [new]


def test_trusted_sources_and_the_errors_name_what_is_wrong(app: Any) -> None:
    server, created = app
    app_id = created["id"]
    base = f"/v2/apps/{app_id}/components"
    with server.http() as http:
        on = http.post(f"{base}/db/trusted_sources", headers=GODO, json={"Enable": True})
        assert on.status_code == 200 and on.json() == {"is_enabled": True}, on.text
        assert http.post(f"{base}/db/trusted_sources", headers=GODO, json={"enable": True}).json() == \
            {"is_enabled": True}
        off = http.post(f"{base}/db/trusted_sources", headers=GODO, json={"Enable": False})
        assert off.status_code == 400 and "cannot be opened" in off.json()["message"], off.text
        bad = http.post(f"{base}/db/trusted_sources", headers=GODO, json={"Enable": "yes"})
        assert bad.status_code == 400 and "'enable' must be a boolean" in bad.json()["message"]
        for path, status, words in ((f"{base}/web/reset_password", 400, "web is a service, not a database"),
                                    (f"{base}/nope/reset_password", 404, "'nope' not found")):
            answer = http.post(path, headers=GODO)
            assert answer.status_code == status and words in answer.json()["message"], answer.text
            assert set(answer.json()) == {"id", "message", "request_id"}
        unknown = http.post(f"{base}/db/reset_password", headers=GODO, json={"password": "mine"})
        assert unknown.status_code == 400 and "'password'" in unknown.json()["message"]
        missing = http.get("/v2/apps/00000000-0000-4000-8000-000000000000/database_connection_details")
        assert missing.status_code == 404

    reader = server.create_token("app:read")
    with server.http(token=reader) as http:
        for answer in (http.get(f"/v2/apps/{app_id}/database_connection_details"),
                       http.post(f"{base}/db/reset_password", headers=GODO)):
            assert answer.status_code == 403, answer.text
            assert "password" not in answer.text
