"""An app in the shape of DigitalOcean's Django sample: a web service on a dev PostgreSQL, a PRE_DEPLOY
migrate job, a static site on /static, an internal API — with secrets and bindable variables."""

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

SECRET = "s3cr3t-token-9f8e7d"

WEB = textwrap.dedent('''
    import os, http.server, urllib.request, psycopg
    print("web starting with API_KEY=" + os.environ["API_KEY"], flush=True)
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/count":
                with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
                    conn.execute("insert into visits default values")
                    body = str(conn.execute("select count(*) from visits").fetchone()[0])
            elif self.path == "/api":
                body = urllib.request.urlopen(os.environ["API_URL"] + "/hello").read().decode()
            elif self.path == "/env":
                body = "\\n".join(f"{k}={os.environ.get(k, '')}" for k in ("APP_URL", "SELF_URL", "DB_NAME", "API_KEY", "DATABASE_URL"))
            else:
                body = "ok"
            data = body.encode()
            self.send_response(200); self.send_header("content-length", str(len(data))); self.end_headers()
            self.wfile.write(data)
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
''')

API = textwrap.dedent('''
    import os, http.server
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = f"internal api answered {self.path}".encode()
            self.send_response(200); self.send_header("content-length", str(len(data))); self.end_headers()
            self.wfile.write(data)
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
''')

MIGRATE = textwrap.dedent('''
    import os, psycopg
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        conn.execute("create table if not exists visits (id serial primary key)")
    print("migrated", flush=True)
''')


def sample_spec(repo: Path, name: str) -> dict[str, Any]:
    src = {"git": {"repo_clone_url": str(repo), "branch": "main"}}
    return {
        "name": name,
        "envs": [{"key": "API_KEY", "value": SECRET, "type": "SECRET", "scope": "RUN_TIME"}],
        "databases": [{"name": "db", "engine": "PG", "version": "16"}],
        "services": [
            {"name": "web", **src, "source_dir": "web", "run_command": "python3 app.py",
             "envs": [{"key": "DATABASE_URL", "value": "${db.DATABASE_URL}", "scope": "RUN_TIME"},
                      {"key": "DB_NAME", "value": "${db.DATABASE}"},
                      {"key": "API_URL", "value": "${api.PRIVATE_URL}"},
                      {"key": "SELF_URL", "value": "${_self.PRIVATE_URL}"},
                      {"key": "APP_URL", "value": "${APP_URL}"}],
             "health_check": {"http_path": "/", "period_seconds": 1}},
            {"name": "api", **src, "source_dir": "api", "run_command": "python3 api.py", "internal_ports": [9090],
             "http_port": 8181},
        ],
        "jobs": [{"name": "migrate", "kind": "PRE_DEPLOY", **src, "source_dir": "web", "run_command": "python3 migrate.py",
                  "envs": [{"key": "DATABASE_URL", "value": "${db.DATABASE_URL}"}]}],
        "static_sites": [{"name": "static", **src, "source_dir": "static"}],
        "ingress": {"rules": [{"match": {"path": {"prefix": "/static"}}, "component": {"name": "static"}},
                              {"match": {"path": {"prefix": "/"}}, "component": {"name": "web"}}]},
    }


@pytest.fixture
def sample(tmp_path: Path) -> Any:
    repo = make_repo(tmp_path / "repo", {"web/app.py": WEB, "web/migrate.py": MIGRATE, "api/api.py": API,
                                         "static/index.html": "<h1>static files</h1>"})
    server = LiveServer(data_dir=tmp_path / "data", runtime="local").start()
    yield server, repo, tmp_path
    server.stop()


def get(server: LiveServer, host: str, path: str) -> str:
    response = httpx.get(f"http://127.0.0.1:{server.ingress_port}{path}", headers={"host": host}, timeout=20)
    assert response.status_code == 200, response.text
    return response.text


def test_the_sample_app_runs_on_a_dev_database_with_secrets_and_bindables(sample: Any) -> None:
    server, repo, tmp = sample
    client = server.client()
    created = client.apps.create(body={"spec": sample_spec(repo, unique_name("sample"))})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=240)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    app = client.apps.get(created["id"])["app"]
    host = app["live_domain"]

    assert get(server, host, "/count") == "1" and get(server, host, "/count") == "2"
    assert "static files" in get(server, host, "/static")
    assert get(server, host, "/api") == "internal api answered /hello"  # ${api.PRIVATE_URL} reaches api
    env = dict(line.split("=", 1) for line in get(server, host, "/env").splitlines())
    assert env["API_KEY"] == SECRET  # decrypted into the process environment only
    assert env["APP_URL"] == app["live_url"] and env["SELF_URL"].startswith("http://127.0.0.1:")
    assert env["DB_NAME"] and "${" not in env["DB_NAME"]

    # The secret is sealed in every API answer, and re-submitting the spec read back changes nothing.
    sealed = app["spec"]["envs"][0]["value"]
    assert sealed.startswith("EV[1:") and SECRET not in str(app)
    again = client.apps.update(created["id"], body={"spec": app["spec"]})["app"]
    assert again["spec"]["envs"][0]["value"] == sealed
    second = wait_deployment(client, created["id"], again["pending_deployment"]["id"], timeout=240)
    assert second["phase"] == "ACTIVE"
    assert get(server, host, "/count") == "3"  # the data survived the redeploy

    # Nowhere in plaintext: not in the logs, not in the store.
    with server.http(anonymous=True) as http:
        for kind in ("RUN", "DEPLOY", "BUILD"):
            answer = client.apps.get_logs_active_deployment_aggregate(created["id"], type=kind)
            text = http.get(answer["historic_urls"][0]).text
            assert SECRET not in text
            if kind == "RUN":
                assert "API_KEY=[secret]" in text
    for path in (server.data_dir).glob("shoal.db*"):
        assert SECRET.encode() not in path.read_bytes()

    # Restarting shoal keeps the database and its data; deleting the app drops the database.
    server.stop()
    server.start()
    client = server.client()
    wait_deployment(client, created["id"], second["id"])
    assert get_when_up(server, host, "/count") == "4"
    url = dict(ln.split("=", 1) for ln in get(server, host, "/env").splitlines())["DATABASE_URL"]
    with psycopg.connect(url, connect_timeout=5) as conn:  # the app's own credentials work...
        assert conn.execute("select count(*) from visits").fetchone() == (4,)
    client.apps.delete(created["id"])

    def refused() -> bool:  # ...until the app and its database are deleted (the runtime drops it right after)
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.OperationalError:
            return True
        return False

    wait_for(refused, timeout=30, interval=0.2)


def get_when_up(server: LiveServer, host: str, path: str) -> str:
    from tests.conftest import wait_for

    def attempt() -> str | None:
        try:
            response = httpx.get(f"http://127.0.0.1:{server.ingress_port}{path}", headers={"host": host}, timeout=20)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None

    return str(wait_for(attempt, timeout=120, interval=0.5))


def test_production_databases_bind_to_registered_clusters(sample: Any) -> None:
    server, repo, _ = sample
    client = server.client()
    src = {"git": {"repo_clone_url": str(repo), "branch": "main"}}
    spec = {"name": unique_name("prod"),
            "databases": [{"name": "main", "engine": "PG", "production": True, "cluster_name": "prod-pg"}],
            "services": [{"name": "web", **src, "source_dir": "web", "run_command": "python3 app.py",
                          "envs": [{"key": "DATABASE_URL", "value": "${main.DATABASE_URL}"},
                                   {"key": "DB_NAME", "value": "${main.DATABASE}"},
                                   {"key": "API_KEY", "value": "unused", "type": "SECRET"}]}]}
    created = client.apps.create(body={"spec": spec})["app"]
    failed = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=120)
    assert failed["phase"] == "ERROR"
    assert "DatabaseNotFound" in str(failed["progress"]) and "prod-pg" in str(failed["progress"])

    url = "postgresql://app:s3cret@127.0.0.1:5999/appdb?sslmode=disable"
    server.shoal("cluster", "add", "prod-pg", "--engine", "PG", "--url", url)
    listing = server.shoal("cluster", "list").stdout
    assert "prod-pg" in listing and "s3cret" not in listing
    dep = client.apps.create_deployment(created["id"], body={})["deployment"]
    assert wait_deployment(client, created["id"], dep["id"], timeout=120)["phase"] == "ACTIVE"
    host = client.apps.get(created["id"])["app"]["live_domain"]
    text = get_when_up(server, host, "/env")
    env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert env.get("DATABASE_URL") == url and env.get("DB_NAME") == "appdb", text
