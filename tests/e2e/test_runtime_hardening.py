"""The local runtime when things go wrong: rollbacks, crashes of shoal itself, ports taken by
others, instances that die before they are ready. Real git repos, real builds, real processes,
through pydo and the ingress."""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import unique_name, wait_deployment, wait_for
from tests.e2e.apps import commit, make_repo
from tests.live import LiveServer, free_port

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


WORKER = 'import time\nwhile True:\n    print("tick", flush=True)\n    time.sleep(1)\n'
SLOW = VERSIONED.replace('VERSION = open("version.txt").read().strip()',
                         'import time; time.sleep(float(os.environ.get("SLOW", "0")))\n'
                         'VERSION = open("version.txt").read().strip()')


def groups(marker: str) -> set[int]:
    """Process groups of live processes whose command line carries ``marker``."""
    import os

    import psutil

    found = set()
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.add(os.getpgid(proc.pid))
        except (psutil.Error, ProcessLookupError):
            continue
    return found


def children_of(server: LiveServer) -> set[int]:
    import psutil

    assert server.process is not None
    return {p.pid for p in psutil.Process(server.process.pid).children(recursive=True)}


def test_killing_shoal_three_times_leaves_one_set_of_processes_and_the_app_answers(tmp_path: Path) -> None:
    marker = unique_name("marker")
    repo = make_repo(tmp_path / "repo", {"app.py": VERSIONED, "version.txt": "A\n", "worker.py": WORKER})
    git = {"git": {"repo_clone_url": str(repo), "branch": "main"}}
    spec = {"name": unique_name("kill"), "services": [
        {"name": "web", **git, "run_command": f"python app.py {marker}"},
        {"name": "api", **git, "run_command": f"python app.py {marker}", "http_port": 8181}],
        "workers": [{"name": "worker", **git, "run_command": f"python worker.py {marker}"}],
        "ingress": {"rules": [{"match": {"path": {"prefix": "/api"}}, "component": {"name": "api"}},
                              {"match": {"path": {"prefix": "/"}}, "component": {"name": "web"}}]}}
    server = LiveServer(data_dir=tmp_path / "data", runtime="local").start()
    try:
        client = server.client()
        created = client.apps.create(body={"spec": spec})["app"]
        dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=180)
        assert dep["phase"] == "ACTIVE", dep["progress"]
        host = client.apps.get(created["id"])["app"]["live_domain"]
        wait_for(lambda: len(groups(marker)) == 3, timeout=30)
        for _ in range(3):
            server.kill()
            server.start()
            wait_for(lambda: groups(marker) and all(os_pgid in children_of(server) for os_pgid in groups(marker))
                     and len(groups(marker)) == 3, timeout=90)
            for path in ("/", "/api"):
                answer = wait_for(lambda p=path: _ok(server, host, p), timeout=60)
                assert int(answer.text.split()[1]) in children_of(server)  # this shoal's instance answers
        assert len(groups(marker)) == 3
        health = client.apps.get_health(created["id"])["app_health"]["components"]
        assert {(c["name"], c["replicas_ready"]) for c in health} == {("web", 1), ("api", 1), ("worker", 1)}
    finally:
        server.stop()
    wait_for(lambda: not groups(marker), timeout=30)  # SIGTERM ends every group it owns


def _ok(server: LiveServer, host: str, path: str) -> httpx.Response | None:
    try:
        answer = ingress(server, host, path)
    except httpx.HTTPError:
        return None
    return answer if answer.status_code == 200 else None


def test_a_crash_while_deploying_resumes_and_starts_what_the_deployment_needs(tmp_path: Path) -> None:
    marker = unique_name("slow")
    repo = make_repo(tmp_path / "repo", {"app.py": SLOW, "version.txt": "A\n"})
    spec = {"name": unique_name("crash"), "services": [{
        "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "run_command": f"python app.py {marker}",
        "envs": [{"key": "SLOW", "value": "6"}], "health_check": {"period_seconds": 1, "failure_threshold": 30}}]}
    server = LiveServer(data_dir=tmp_path / "data", runtime="local").start()
    try:
        client = server.client()
        created = client.apps.create(body={"spec": spec})["app"]
        app_id, dep_id = created["id"], created["pending_deployment"]["id"]

        def waiting() -> bool:
            dep = client.apps.get_deployment(app_id, dep_id)["deployment"]
            steps = {(s.get("component_name"), s["name"]): s["status"] for s in _leaves(dep["progress"]["steps"])}
            return steps.get(("web", "deploy")) == "SUCCESS" and steps.get(("web", "wait")) == "RUNNING"

        wait_for(waiting, timeout=180)
        server.kill()  # DEPLOYING: started, not yet healthy
        server.start()
        dep = wait_deployment(client, app_id, dep_id, timeout=120)
        assert dep["phase"] == "ACTIVE", dep["progress"]
        host = client.apps.get(app_id)["app"]["live_domain"]
        answer = wait_for(lambda: _ok(server, host, "/"), timeout=30)
        assert int(answer.text.split()[1]) in children_of(server)
        health = client.apps.get_health(app_id)["app_health"]["components"]
        assert [(c["name"], c["replicas_ready"], c["state"]) for c in health] == [("web", 1, "HEALTHY")]
        assert [i["component_name"] for i in client.apps.get_instances(app_id)["instances"]] == ["web"]
    finally:
        server.stop()


def _leaves(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for step in steps:
        found.extend(_leaves(step["steps"]) if step.get("steps") else [step])
    return found


SQUATTER = textwrap.dedent('''
    # Takes a port during the build and keeps it: bound before the build step ends, then detached.
    import http.server, os, socket, sys
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    sock.listen(16)
    if os.fork():
        sys.exit(0)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    class Foreign(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-length", "8")
            self.end_headers()
            self.wfile.write(b"foreign\\n")
        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Foreign, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.serve_forever()
''')


def _kill(marker: str) -> None:
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if marker in " ".join(proc.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                proc.kill()


@pytest.mark.parametrize("broken", [False, True], ids=["app-works", "app-cannot-start"])
def test_a_port_taken_during_the_build_is_not_mistaken_for_the_instance(local: Any, broken: bool) -> None:
    server, root = local
    client = server.client()
    marker, port = unique_name("squat"), free_port()
    repo = make_repo(root / unique_name("squat"), {"app.py": VERSIONED, "version.txt": "A\n", "squatter.py": SQUATTER})
    run = "no-such-program --serve" if broken else "python app.py"
    spec = {"name": unique_name("port"), "services": [{
        "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "http_port": port,
        "build_command": f"python squatter.py {port} {marker}", "run_command": run,
        "health_check": {"period_seconds": 1, "failure_threshold": 3}}]}
    try:
        created = client.apps.create(body={"spec": spec})["app"]
        dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=240)
        assert groups(marker), "the squatter holds the port"
        if broken:
            assert dep["phase"] == "ERROR"
            reason = next(s["reason"] for s in _leaves(dep["progress"]["steps"]) if s["status"] == "ERROR")
            assert reason["code"] == "ContainerHealthChecksFailed"
            assert "no-such-program" in reason["message"] and "not found" in reason["message"]
            return
        assert dep["phase"] == "ACTIVE", dep["progress"]
        host = client.apps.get(created["id"])["app"]["live_domain"]
        assert ingress(server, host).text.startswith("A ")  # the app itself, on another port
        deploy = history(server, client.apps.get_logs(created["id"], dep["id"], "web", type="DEPLOY"))
        assert f"port {port} is taken by another program" in deploy
    finally:
        _kill(marker)


def test_a_secret_printed_across_the_line_limit_is_masked_in_build_and_run_logs(local: Any) -> None:
    server, root = local
    client = server.client()
    secret = "sEcReT-" + unique_name("v")
    printer = textwrap.dedent('''
        import os, sys, time
        token = os.environ["TOKEN"]
        # The line's first 64 KiB end in the secret's first characters and arrive on their own, so
        # the runtime has to cut the line there (a line read whole at once would not be cut).
        sys.stdout.write("x" * (65536 - 5) + token[:5])
        sys.stdout.flush()
        time.sleep(0.5)
        sys.stdout.write(token[5:] + " end\\n")
        sys.stdout.flush()
        if sys.argv[1:] != ["once"]:
            time.sleep(600)
    ''')
    repo = make_repo(root / unique_name("mask"), {"print.py": printer})
    spec = {"name": unique_name("mask"), "workers": [{
        "name": "worker", "git": {"repo_clone_url": str(repo), "branch": "main"},
        "build_command": "python print.py once", "run_command": "python print.py",
        "envs": [{"key": "TOKEN", "value": secret, "type": "SECRET", "scope": "RUN_AND_BUILD_TIME"}]}]}
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=180)
    assert dep["phase"] == "ACTIVE", dep["progress"]

    def logs(kind: str) -> str:
        return history(server, client.apps.get_logs(created["id"], dep["id"], "worker", type=kind))

    run = wait_for(lambda: next((t for t in [logs("RUN")] if "end" in t), None), timeout=30)
    build = logs("BUILD")
    for text in (run, build):
        assert secret not in text and secret[4:] not in text and "[secret] end" in text, text[-300:]
