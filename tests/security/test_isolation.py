"""Apps cannot read shoal's secrets or each other's: the attacks from issue 12, tried for real.

shoal runs as root here, so each app runs as a user of its own. An app of one account (the
attacker) serves an endpoint that tries to open and list whatever the test names — shoal's data
dir (admin token, secrets.key, shoal.db, the source mirrors), the other account's app's sources and
builds, and ``/proc/<pid>/environ`` of the other app and of shoal itself — and its build tries
the same; every attempt must be refused by the kernel. The victim's own environment holds its
variables only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import unique_name, wait_deployment, wait_for
from tests.e2e.apps import make_repo
from tests.live import LiveServer, free_port

PROBE = textwrap.dedent('''
    import http.server, json, os, sys, urllib.parse
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            asked = urllib.parse.parse_qs(url.query)
            found = {}
            for target in asked.get("read", []):
                try:
                    with open(target, "rb") as handle:
                        found[target] = "READ " + handle.read(300).decode("latin-1")
                except OSError as exc:
                    found[target] = f"refused {exc.errno}"
            for target in asked.get("list", []):
                try:
                    found[target] = "LISTED " + ",".join(sorted(os.listdir(target)))
                except OSError as exc:
                    found[target] = f"refused {exc.errno}"
            found["whoami"] = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
                               "env": dict(os.environ), "pid": os.getpid()}
            body = json.dumps(found).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    print("probe ready", flush=True)
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
''')
SECRET = "victim-secret-" + os.urandom(6).hex()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("isolation")
    repos = root / "repos"
    repos.mkdir()
    server = LiveServer(data_dir=root / "data", runtime="local",
                        extra_args=["--allow-local-sources", str(repos)]).start()
    alice, bob = server.create_token(account="alice"), server.create_token(account="bob")
    apps = {}
    for who, token, secret in (("victim", alice, SECRET), ("attacker", bob, None)):
        repo = make_repo(repos / who, {"app.py": PROBE, "requirements.txt": ""})
        envs = [{"key": "MINE", "value": f"{who}-own-value"}]
        if secret:
            envs.append({"key": "TOP_SECRET", "value": secret, "type": "SECRET"})
        build = (f"cat {server.data_dir}/admin-token {server.data_dir}/secrets.key 2>&1 || echo denied-at-build; "
                 f"ls {server.data_dir} 2>&1 || echo denied-at-build")
        spec = {"name": unique_name(who), "services": [{
            "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "run_command": "python app.py",
            "build_command": build, "envs": envs}]}
        client = server.client(token)
        created = client.apps.create(body={"spec": spec})["app"]
        dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=240)
        assert dep["phase"] == "ACTIVE", dep["progress"]
        apps[who] = {"client": client, "id": created["id"], "dep": dep["id"],
                     "host": client.apps.get(created["id"])["app"]["live_domain"]}
    yield server, apps
    server.stop()


def probe(server: LiveServer, app: dict[str, Any], read: Sequence[str] = (),
          listed: Sequence[str] = ()) -> dict[str, Any]:
    answer = httpx.get(f"http://127.0.0.1:{server.ingress_port}/probe", params={"read": list(read), "list": list(listed)},
                       headers={"host": app["host"]}, timeout=20)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def victim_tree(server: LiveServer, app_id: str) -> Path:
    assert server.apps is not None
    return server.apps / app_id


def test_an_app_cannot_read_shoals_secrets(platform: Any) -> None:
    server, apps = platform
    data = server.data_dir
    token = (data / "admin-token").read_text().strip()
    targets = [data / "admin-token", data / "secrets.key", data / "signing.key", data / "shoal.db",
               data / "shoal.db-wal", data / "tls" / "ca-key.pem", data / "runtime" / "identities.json"]
    found = probe(server, apps["attacker"], read=[str(t) for t in targets],
                  listed=[str(data), str(data / "cache" / "git"), str(data / "checkouts")])
    for target in [*targets, data, data / "cache" / "git", data / "checkouts"]:
        assert found[str(target)].startswith("refused 13"), (target, found[str(target)])
    assert token not in json.dumps(found)


def test_an_app_cannot_read_another_apps_sources_builds_or_environment(platform: Any) -> None:
    server, apps = platform
    tree = victim_tree(server, apps["victim"]["id"])
    source = next(tree.rglob("app.py"))  # looked up by the test (root); the attacker is told the exact path
    victim_pids = [p.pid for p in psutil.process_iter(["environ"]) if SECRET in json.dumps(_environ(p))]
    assert victim_pids, "the victim runs with its secret in its environment"
    found = probe(server, apps["attacker"], read=[str(source), *(f"/proc/{pid}/environ" for pid in victim_pids),
                                                  f"/proc/{server.process.pid}/environ"],
                  listed=[str(tree), str(source.parent), str(server.apps)])
    for target in (source, *(f"/proc/{pid}/environ" for pid in victim_pids), f"/proc/{server.process.pid}/environ",
                   tree, source.parent, server.apps):
        assert found[str(target)].startswith("refused 13"), (target, found[str(target)])
    assert SECRET not in json.dumps(found) and server.token not in json.dumps(found)


def test_each_app_runs_as_its_own_unprivileged_user_with_only_its_own_variables(platform: Any) -> None:
    server, apps = platform
    victim, attacker = (probe(server, apps[who])["whoami"] for who in ("victim", "attacker"))
    assert victim["uid"] != attacker["uid"] and 0 not in (victim["uid"], attacker["uid"], victim["gid"])
    assert victim["groups"] in ([], [victim["gid"]]) and attacker["groups"] in ([], [attacker["gid"]])
    env = victim["env"]
    assert env["MINE"] == "victim-own-value" and env["TOP_SECRET"] == SECRET
    assert not any(key.startswith("SHOAL") for key in env), sorted(env)
    assert env["HOME"].startswith(str(victim_tree(server, apps["victim"]["id"]))) and "TOP_SECRET" not in attacker["env"]
    assert not any("victim-own-value" in value for value in attacker["env"].values())
    # The same uid after a restart of shoal (recorded, not allocated again).
    server.stop()
    server.start()
    again = wait_for(lambda: _answer(server, apps["victim"]), timeout=120)["whoami"]
    assert again["uid"] == victim["uid"]


def test_builds_run_as_the_app_too(platform: Any) -> None:
    server, apps = platform
    token = (server.data_dir / "admin-token").read_text().strip()
    client = apps["attacker"]["client"]
    logs = client.apps.get_logs(apps["attacker"]["id"], apps["attacker"]["dep"], "web", type="BUILD")
    with server.http(anonymous=True) as http:
        build = http.get(logs["historic_urls"][0]).text
    printed = [line.split(" ", 2)[-1] for line in build.splitlines()]
    assert printed.count("denied-at-build") == 2 and any("Permission denied" in line for line in printed), build
    assert token not in build and "shoal.db" not in build
    tree = victim_tree(server, apps["attacker"]["id"])
    built = list(tree.glob("web/*/app/**/*"))  # what the build made and copied (shoal keeps its marker and folders)
    assert built and {p.lstat().st_uid for p in built} == {tree.stat().st_uid} != {0}
    assert tree.stat().st_mode & 0o777 == 0o700  # the app's, and private


def test_a_deleted_apps_tree_goes_and_its_uid_is_not_reused(platform: Any, tmp_path: Path) -> None:
    server, apps = platform
    victim_uid = probe(server, apps["victim"])["whoami"]["uid"]
    records = json.loads((server.data_dir / "runtime" / "identities.json").read_text())
    assert records["apps"][apps["victim"]["id"]] == victim_uid and records["next"] > victim_uid


def _answer(server: LiveServer, app: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return probe(server, app)
    except (httpx.HTTPError, AssertionError):
        return None


def _environ(proc: psutil.Process) -> dict[str, str]:
    try:
        return dict(proc.info["environ"] or {})
    except (psutil.Error, TypeError):
        return {}


def unmeasured() -> dict[str, str]:
    """This environment without coverage's: ``nobody`` cannot write the measurements beside the checkout
    (under ``coverage run`` its shoal then never finished its SIGTERM and the test timed out)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


def test_without_root_shoal_says_apps_are_not_isolated(tmp_path: Path) -> None:
    """One clear line at start (here shoal is started as ``nobody``)."""
    home = Path(tempfile.mkdtemp(prefix="shoal-nonroot-", dir="/tmp"))
    try:
        os.chown(home, 65534, 65534)
        log = home / "serve.log"
        with open(log, "wb") as out:
            serve = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                                      sys.executable, "-m", "shoal", "serve", "--data-dir", str(home / "data"),
                                      "--api-listen", f"127.0.0.1:{free_port()}",
                                      "--ingress-listen", f"127.0.0.1:{free_port()}", "--runtime", "local"],
                                     stdout=out, stderr=subprocess.STDOUT, env={**unmeasured(), "HOME": str(home)})
        try:
            wait_for(lambda: "shoal API on" in log.read_text() or serve.poll() is not None, timeout=60)
        finally:
            serve.terminate()
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:  # never left running, whatever went wrong
                serve.kill()
                serve.wait(10)
                raise
        text = log.read_text()
        lines = [line for line in text.splitlines() if "not isolated" in line]
        assert len(lines) == 1 and "not running as root" in lines[0] and "nobody" in lines[0], text
    finally:
        subprocess.run(["rm", "-rf", str(home)], check=False)
