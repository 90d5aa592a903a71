"""Documents built to hurt a parser: YAML alias bombs, nesting past any spec's depth, and strings
that are not Unicode. Each gets a 400 with DigitalOcean's error shape at once, the server keeps
answering, and nothing is stored; rows stored before these rules existed still read back.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.domain.apps import App
from shoal.store import open_database
from tests.conftest import service_spec, unique_name
from tests.contract.test_bad_input import app_count, assert_error
from tests.live import LiveServer, free_port


def alias_bomb(levels: int = 9) -> str:
    """The "billion laughs": 9 aliases of 9 aliases of ... a few hundred bytes, 9**9 strings expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "spec:\n" + "\n".join("  " + line for line in lines) + f"\n  name: *a{levels - 1}\n"


def nested(depth: int) -> str:
    return "spec: " + "[" * depth + "]" * depth + "\n"


HOSTILE = [
    pytest.param(alias_bomb(), "aliases expand", id="alias-bomb"),
    pytest.param(nested(500), "nested more than", id="nested-500"),
    pytest.param(nested(5000), "nested more than", id="nested-5000"),
    pytest.param("spec: &s {name: *s}\n", "refers to the node that contains it", id="recursive-alias"),
]


@pytest.fixture(scope="module")
def own_token(server: LiveServer) -> str:
    """A token of these tests' own: rate limits count per token, and the session's is shared."""
    return server.create_token()


@pytest.fixture
def http(server: LiveServer, own_token: str) -> Any:
    with server.http(own_token) as client:
        yield client


@pytest.mark.parametrize(("body", "words"), HOSTILE)
@pytest.mark.parametrize("path", ["/v2/apps", "/v2/apps/propose"])
def test_hostile_yaml_is_a_400_at_once(server: LiveServer, http: httpx.Client, path: str, body: str,
                                       words: str) -> None:
    before = app_count(http)
    started = time.monotonic()
    answer = http.post(path, content=body.encode(), headers={"content-type": "application/yaml"})
    assert_error(answer, 400, "bad_request", "invalid YAML", words)
    assert time.monotonic() - started < 10  # milliseconds when idle; a stall was 59 s, then an abort
    assert app_count(http) == before and server.process is not None and server.process.poll() is None


def test_propose_with_a_read_only_token_cannot_stall_the_server(server: LiveServer) -> None:
    with server.http(server.create_token("app:read")) as http:
        answer = http.post("/v2/apps/propose", content=alias_bomb().encode(),
                           headers={"content-type": "application/yaml"})
    assert_error(answer, 400, "bad_request", "aliases expand")


def test_a_little_aliasing_still_works(http: httpx.Client) -> None:
    body = ("spec:\n  name: aliased\n  services:\n  - &web {name: web, github: {repo: a/b}, envs: &envs "
            "[{key: A, value: '1'}]}\n  workers:\n  - {name: worker, github: {repo: a/b}, envs: *envs}\n")
    answer = http.post("/v2/apps/propose", content=body.encode(), headers={"content-type": "application/yaml"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["spec"]["workers"][0]["envs"][0]["key"] == "A"


@pytest.mark.parametrize(("where", "field"), [
    (lambda s: s["services"][0].update(envs=[{"key": "K", "value": "\udfff"}]), "services[0].envs[0].value"),
    (lambda s: s["services"][0].update(envs=[{"key": "K\udfff", "value": "v"}]), "services[0].envs[0].key"),
    (lambda s: s["services"][0].update(envs=[{"key": "K", "value": "\ud800x", "type": "SECRET"}]),
     "services[0].envs[0].value"),
    (lambda s: s.update(name="bad\udfff"), "spec.name"),
    (lambda s: s.update(envs=[{"key": "A", "value": "ok"}, {"key": "B", "value": "\udc00"}]), "envs[1].value"),
])
def test_unpaired_surrogates_are_refused_naming_the_field(http: httpx.Client, where: Any, field: str) -> None:
    spec = service_spec(unique_name("uni"))
    where(spec)
    before = app_count(http)
    body = json.dumps({"spec": spec})  # ensure_ascii: the surrogate travels as a \\udfff escape
    for method, path in (("POST", "/v2/apps"), ("POST", "/v2/apps/propose")):
        answer = http.request(method, path, content=body, headers={"content-type": "application/json"})
        assert_error(answer, 400, "bad_request", field, "not valid Unicode")
    assert app_count(http) == before
    assert http.get("/v2/apps").status_code == 200


def test_rows_stored_with_a_surrogate_before_the_fix_still_read(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data").start()
    created = server.client().apps.create(body={"spec": service_spec("fine-app")})["app"]
    server.stop()
    # What the API stored before strings were checked: the spec as given, surrogate and all.
    db = open_database(f"sqlite:///{tmp_path / 'data' / 'shoal.db'}")
    admin = db.accounts.ensure_account("admin", "")
    now = datetime.now(UTC)
    spec = {**service_spec("broken-app"), "envs": [{"key": "K", "value": "bad \udfff value", "scope": "RUN_TIME",
                                                    "type": "GENERAL"}]}
    db.apps.insert_app(App(id="00000000-0000-4000-8000-00000000dead", account_id=admin.id, name="broken-app",
                           spec=spec, region="nyc", ingress_host="broken-app-abcde.localhost", tier_slug="basic",
                           project_id="p", created_at=now, updated_at=now))
    db.close()
    server.start()
    try:
        client = server.client()
        names = {app["spec"]["name"] for app in client.apps.list()["apps"]}
        assert names == {"fine-app", "broken-app"}
        broken = client.apps.get("00000000-0000-4000-8000-00000000dead")["app"]
        assert broken["spec"]["envs"][0]["value"] == "bad \ufffd value"
        assert client.apps.get(created["id"])["app"]["spec"]["name"] == "fine-app"
    finally:
        server.stop()


@pytest.mark.parametrize(("text", "words"), [(alias_bomb(), "aliases expand"), (nested(800), "nested more than")],
                         ids=["alias-bomb", "nested-800"])
@pytest.mark.parametrize("command", [["spec", "validate"], ["up", "--detach", "--data-dir", "d"]], ids=["validate", "up"])
def test_the_cli_refuses_hostile_spec_files_at_once(tmp_path: Path, text: str, words: str, command: list[str]) -> None:
    spec = tmp_path / "app.yaml"
    spec.write_text(text)
    if command[0] == "up":  # never the default ports, should a server be started after all
        command = [*command, "--api-listen", f"127.0.0.1:{free_port()}", "--ingress-listen", f"127.0.0.1:{free_port()}"]
    try:
        done = subprocess.run([sys.executable, "-m", "shoal", *command, str(spec)],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 1, done
        assert words in done.stderr
        assert not (tmp_path / "d").exists()  # shoal up refused the file before starting a server
    finally:
        pid_file = tmp_path / "d" / "serve.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
