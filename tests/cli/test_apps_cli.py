"""``shoal apps``: the CLI run as a subprocess against a live ``shoal serve`` (simulate runtime)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from shoal.cli.apps import apps_app
from tests.conftest import service_spec, unique_name, wait_deployment, wait_for
from tests.live import LiveServer

_ENV = {k: v for k, v in os.environ.items()
        if k not in {"SHOAL_TOKEN", "DIGITALOCEAN_TOKEN", "SHOAL_API_URL", "SHOAL_CA_CERT", "SHOAL_DATA_DIR"}}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(data_dir=tmp_path_factory.mktemp("apps-cli") / "data")
    server.start()
    yield server
    server.stop()


def run(server: LiveServer, *args: str, target: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "shoal", "apps", *args]
    if target:
        cmd += ["--api-url", server.url, "--token", server.token, "--ca-cert", server.ca]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60, env=_ENV)


def ok(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    done = run(server, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def write_spec(tmp_path: Path, spec: dict[str, Any], name: str = "app.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def create(server: LiveServer, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    name = unique_name("cli")
    app: dict[str, Any] = json.loads(ok(server, "create", "--spec", write_spec(tmp_path, service_spec(name, **extra)),
                                        "--wait", "-o", "json").stdout)
    return app


def make_app(server: LiveServer, **extra: Any) -> dict[str, Any]:
    """An app with an ACTIVE deployment, made through pydo (quicker than the CLI where it is not under test)."""
    client = server.client()
    app = client.apps.create({"spec": service_spec(unique_name("cli"), **extra)})["app"]
    wait_deployment(client, app["id"], app["pending_deployment"]["id"], {"ACTIVE"})
    return dict(client.apps.get(app["id"])["app"])


HELP = {
    "create": ["--spec", "--wait", "--upsert"], "get": ["--output"], "list": ["--api-url", "--token", "--ca-cert"],
    "update": ["--spec", "--wait", "--update-sources"], "delete": ["--force"], "spec get": ["--output"],
    "spec validate": ["--output"], "logs": ["--type", "--follow", "--deployment", "--tail"],
    "deployments list": ["--output"], "deployments get": ["--output"],
    "deployments create": ["--force-rebuild", "--wait"], "deployments cancel": ["--output"],
    "restart": ["--components", "--wait"], "rollback": ["--skip-pin", "--wait", "validate", "commit", "revert"],
    "rollback validate": ["--skip-pin"], "rollback commit": ["--output"], "rollback revert": ["--wait"],
    "regions": ["--output"], "instance-sizes": ["--output"], "alerts list": ["--output"],
}


@pytest.mark.parametrize("command", sorted(HELP))
def test_help_names_the_flags(command: str) -> None:
    done = CliRunner().invoke(apps_app, [*command.split(), "--help"], terminal_width=200)
    assert done.exit_code == 0, done.output
    for flag in HELP[command]:
        assert flag in done.output, (command, flag)


def test_apps_help_documents_exit_codes() -> None:
    done = subprocess.run([sys.executable, "-m", "shoal", "apps", "--help"], check=False, capture_output=True, text=True,
                          env={**_ENV, "COLUMNS": "200"}, timeout=60)
    assert "Exit codes" in done.stdout and "3 deployment failed" in done.stdout


def test_create_get_list_in_every_format(live: LiveServer, tmp_path: Path) -> None:
    app = create(live, tmp_path)
    name = app["spec"]["name"]
    assert app["active_deployment"]["phase"] == "ACTIVE"
    by_name = yaml.safe_load(ok(live, "get", name, "-o", "yaml").stdout)
    assert by_name["id"] == app["id"]
    assert json.loads(ok(live, "get", app["id"]).stdout)["spec"]["name"] == name  # json when not a TTY
    table = ok(live, "list", "-o", "table").stdout
    assert "Spec Name" in table and name in table
    assert app["id"] in [a["id"] for a in json.loads(ok(live, "list", "-o", "json").stdout)]


def test_wait_reports_the_failing_step(live: LiveServer, tmp_path: Path) -> None:
    spec = service_spec(unique_name("fail"), envs=[{"key": "SHOAL_SIMULATE_FAIL", "value": "build"}])
    done = run(live, "create", "--spec", write_spec(tmp_path, spec), "--wait")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "error: deployment" in done.stderr and "BuildJobExitNonZero" in done.stderr
    assert "SHOAL_SIMULATE_FAIL=build" in done.stderr


def test_upsert_creates_then_updates(live: LiveServer, tmp_path: Path) -> None:
    spec = service_spec(unique_name("up"))
    first = json.loads(ok(live, "create", "--upsert", "--spec", write_spec(tmp_path, spec), "--wait").stdout)
    spec["services"][0]["envs"] = [{"key": "V", "value": "2"}]
    second = json.loads(ok(live, "create", "--upsert", "--spec", write_spec(tmp_path, spec), "--wait").stdout)
    assert second["id"] == first["id"] and second["spec"]["services"][0]["envs"][0]["value"] == "2"
    names = [a["spec"]["name"] for a in json.loads(ok(live, "list").stdout)]
    assert names.count(spec["name"]) == 1


def test_update_and_spec_get(live: LiveServer, tmp_path: Path) -> None:
    app = make_app(live)
    spec = {"spec": {**app["spec"], "services": [{**app["spec"]["services"][0], "envs": [{"key": "V", "value": "3"}]}]}}
    path = write_spec(tmp_path, spec, "deploy.template.yaml")  # the .do/deploy.template.yaml form
    ok(live, "update", app["spec"]["name"], "--spec", path, "--wait", "--update-sources")
    got = yaml.safe_load(ok(live, "spec", "get", app["id"], "-o", "table").stdout)
    assert got["services"][0]["envs"][0]["value"] == "3"
    assert json.loads(ok(live, "spec", "get", app["id"], "-o", "json").stdout)["name"] == app["spec"]["name"]


def test_spec_validate_on_the_server(live: LiveServer, tmp_path: Path) -> None:
    proposal = json.loads(ok(live, "spec", "validate", write_spec(tmp_path, service_spec(unique_name()))).stdout)
    assert proposal["spec"]["services"][0]["http_port"] == 8080 and "app_cost" in proposal
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad-spec\nservices:\n  - name: web\n    instance_count: -1\n"
                   "    git: {repo_clone_url: https://example.com/r.git}\n  - name: BAD\n")
    done = run(live, "spec", "validate", str(bad))
    assert done.returncode == 1
    assert "error: the app spec has" in done.stderr
    assert "services[0].instance_count: must be at least 1" in done.stderr
    assert f"--> {bad}:4: instance_count: -1" in done.stderr
    assert "services[1].name" in done.stderr


def test_deployments_list_get_create(live: LiveServer, tmp_path: Path) -> None:
    app = make_app(live)
    deps = json.loads(ok(live, "deployments", "list", app["spec"]["name"]).stdout)
    assert deps and deps[0]["phase"] == "ACTIVE"
    got = yaml.safe_load(ok(live, "deployments", "get", app["id"], deps[0]["id"], "-o", "yaml").stdout)
    assert got["id"] == deps[0]["id"]
    done = ok(live, "deployments", "create", app["id"], "--force-rebuild", "--wait", "-o", "table")
    assert "ACTIVE" in done.stdout and "6/6" in done.stderr
    assert len(json.loads(ok(live, "deployments", "list", app["id"]).stdout)) == 2


def test_restart_and_rollback(live: LiveServer, tmp_path: Path) -> None:
    app = make_app(live)
    name, first = app["spec"]["name"], app["active_deployment"]["id"]
    restarted = json.loads(ok(live, "restart", name, "--components", "web", "--wait").stdout)
    assert restarted["phase"] == "ACTIVE"
    spec = {**app["spec"], "services": [{**app["spec"]["services"][0], "envs": [{"key": "V", "value": "2"}]}]}
    ok(live, "update", name, "--spec", write_spec(tmp_path, spec), "--wait")
    check = json.loads(ok(live, "rollback", "validate", name, first).stdout)
    assert check["valid"] is True
    rolled = json.loads(ok(live, "rollback", name, first, "--wait").stdout)
    assert rolled["phase"] == "ACTIVE"
    reverted = json.loads(ok(live, "rollback", "revert", name, "--wait").stdout)
    assert reverted["phase"] == "ACTIVE"
    assert yaml.safe_load(ok(live, "spec", "get", name, "-o", "yaml").stdout)["services"][0]["envs"][0]["value"] == "2"
    ok(live, "rollback", name, first, "--skip-pin")
    assert json.loads(ok(live, "rollback", "commit", name).stdout)["committed"] is True


def test_catalog_and_alerts(live: LiveServer, tmp_path: Path) -> None:
    regions = json.loads(ok(live, "regions").stdout)
    assert "nyc" in [r["slug"] for r in regions]
    assert "New York" in ok(live, "regions", "-o", "table").stdout
    sizes = yaml.safe_load(ok(live, "instance-sizes", "-o", "yaml").stdout)
    assert any(s["slug"] == "apps-s-1vcpu-0.5gb" for s in sizes)
    assert "apps-s-1vcpu" in ok(live, "instance-sizes", "-o", "table").stdout
    app = make_app(live)
    assert isinstance(json.loads(ok(live, "alerts", "list", app["spec"]["name"]).stdout), list)
    assert "Spec Rule" in ok(live, "alerts", "list", app["id"], "-o", "table").stdout


def test_logs_history(live: LiveServer, tmp_path: Path) -> None:
    app = make_app(live)
    build = ok(live, "logs", app["spec"]["name"], "--type", "build").stdout
    assert "Build complete" in build
    assert len(ok(live, "logs", app["id"], "web", "--type", "build", "--tail", "1").stdout.splitlines()) == 1
    dep = app["active_deployment"]["id"]
    assert "web" in ok(live, "logs", app["id"], "--type", "deploy", "--deployment", dep).stdout


def test_logs_follow_a_running_build(fresh_server_factory: Any, tmp_path: Path) -> None:
    slow: LiveServer = fresh_server_factory("--simulate-step-seconds", "0.3")
    name = unique_name("follow")
    ok(slow, "create", "--spec", write_spec(tmp_path, service_spec(name)))
    done = ok(slow, "logs", name, "web", "--type", "build", "--follow")
    lines = done.stdout.splitlines()
    assert any("Build complete" in line for line in lines)
    assert len(lines) == len(set(lines))  # nothing printed twice
    # cancel: a deployment that is still going
    dep = json.loads(ok(slow, "deployments", "create", name).stdout)
    canceled = json.loads(ok(slow, "deployments", "cancel", name, dep["id"]).stdout)
    assert canceled["id"] == dep["id"]
    wait_for(lambda: json.loads(ok(slow, "deployments", "get", name, dep["id"]).stdout)["phase"]
             in {"CANCELED", "ACTIVE"}, timeout=20, interval=0.3)


def test_delete(live: LiveServer, tmp_path: Path) -> None:
    app = make_app(live)
    refused = run(live, "delete", app["id"])  # stdin is not a terminal: no prompt, no deletion
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert json.loads(ok(live, "delete", app["spec"]["name"], "--force").stdout)["id"] == app["id"]
    gone = run(live, "get", app["id"])
    assert gone.returncode == 1 and "not found" in gone.stderr


def test_errors_read_well(live: LiveServer, tmp_path: Path) -> None:
    bad_token = subprocess.run([sys.executable, "-m", "shoal", "apps", "list", "--api-url", live.url, "--ca-cert",
                                live.ca, "--token", "dop_v1_" + "0" * 64], check=False, capture_output=True, text=True,
                               env=_ENV, timeout=60)
    assert bad_token.returncode == 4 and "shoal token create" in bad_token.stderr
    down = subprocess.run([sys.executable, "-m", "shoal", "apps", "list", "--api-url", "https://127.0.0.1:1",
                           "--token", live.token], check=False, capture_output=True, text=True, env=_ENV, timeout=60)
    assert down.returncode == 4 and "https://127.0.0.1:1" in down.stderr and "shoal serve" in down.stderr
    missing = run(live, "get", "no-such-app")
    assert missing.returncode == 1 and missing.stderr.startswith("error:")
    assert run(live, "create").returncode == 2  # --spec is required


def test_local_server_defaults_from_the_data_dir(live: LiveServer) -> None:
    """No token: the admin token and CA come from the data dir (only for a loopback URL)."""
    done = subprocess.run([sys.executable, "-m", "shoal", "apps", "regions", "--api-url", live.url, "--data-dir",
                           str(live.data_dir)], check=False, capture_output=True, text=True, env=_ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)
