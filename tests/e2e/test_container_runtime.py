"""The container runtime end to end: ``shoal serve --runtime container`` on a real podman, driven by pydo.

One server for the module, with a loopback registry (htpasswd) mirrored in for ``ghcr.io``; the apps
are created together at the start so their builds overlap, then each test checks what a user sees:
answers through the ingress, deployment phases and reasons, logs, and what runs on the engine.
Everything the server and the tests label is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.runtime.container import images
from shoal.runtime.container.session import EngineSession, owner_of
from tests.conftest import unique_name, wait_deployment, wait_for
from tests.doctl_console import DoctlConsole, exec_url
from tests.containers import HELLO_DOCKERFILE, HELLO_GO, clean, engine_session, image_ids, push_hello, stack
from tests.e2e.apps import make_repo
from tests.live import LiveServer
from tests.registry import PASSWORD, USER, LoopbackRegistry, registry_available

# A Python app (stdlib only) that tells what it sees from inside its container.
PROBE_APP = textwrap.dedent('''
    import http.server, os, socket, struct, urllib.parse, urllib.request

    def pg(host, port):
        """Whether a PostgreSQL server answers an SSLRequest at host:port."""
        try:
            with socket.create_connection((host, int(port)), timeout=3) as sock:
                sock.sendall(struct.pack("!ii", 8, 80877103))
                return "postgres answered" if sock.recv(1) in (b"S", b"N") else "no answer"
        except OSError as exc:
            return "unreachable " + type(exc).__name__

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path.startswith("/env/"):
                body = os.environ.get(url.path[5:], "")
            elif url.path == "/fetch":
                try:
                    body = urllib.request.urlopen(query["url"], timeout=3).read().decode()
                except Exception as exc:
                    body = "unreachable " + type(exc).__name__
            elif url.path == "/pg":
                where = urllib.parse.urlsplit(os.environ.get("DATABASE_URL", "postgresql://none:1/x"))
                body = pg(query.get("host", where.hostname), query.get("port", where.port))
            elif url.path == "/hog":
                print("allocating until the limit stops me", flush=True)
                hoard = []
                while True:
                    hoard.append(b"x" * (32 << 20))
            else:
                body = "hello " + os.environ.get("GREETING", "nobody")
            data = body.encode()
            self.send_response(200)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            print("served", self.path, flush=True)

    print("probe listening on", os.environ["PORT"], flush=True)
    http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
''')
UNLIMITED = str(10**9)
HEALTH = {"http_path": "/", "period_seconds": 1, "failure_threshold": 5}
SITE_BUILD = "mkdir -p dist && echo \"<h1>built in a container by $(id -u)</h1>\" > dist/index.html"


@dataclass
class World:
    server: LiveServer
    root: Path
    inspect: EngineSession  # the tests' own engine session (another owner): to look at the server's objects
    registry: LoopbackRegistry
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)  # role → created app

    @property
    def owner(self) -> str:
        return owner_of(self.server.data_dir)

    def running(self, app_id: str | None = None) -> list[Any]:
        labels = [f"shoal.owner={self.owner}"] + ([f"shoal.app={app_id}"] if app_id else [])
        return self.inspect.engine.client.containers.list(filters={"label": labels})


def _source(repo: Path) -> dict[str, Any]:
    return {"git": {"repo_clone_url": str(repo), "branch": "main"}}


def _probe(name: str, repo: Path, **extra: Any) -> dict[str, Any]:
    return {"name": name, **_source(repo), "health_check": HEALTH,
            "termination": {"drain_seconds": 1, "grace_period_seconds": 2}, **extra}


def _specs(world: World, probe: Path, hello: Path) -> dict[str, dict[str, Any]]:
    image = {"registry_type": "GHCR", "registry": "team", "repository": "hello", "tag": "1"}
    return {
        "alpha": {"name": unique_name("alpha"), "services": [
            _probe("web", probe, envs=[{"key": "API_URL", "value": "${api.PRIVATE_URL}"},
                                       {"key": "DATABASE_URL", "value": "${db.DATABASE_URL}"},
                                       {"key": "TOKEN", "value": "alpha-secret-value", "type": "SECRET"}]),
            _probe("api", probe, envs=[{"key": "GREETING", "value": "from api"}])],
            "static_sites": [{"name": "site", **_source(probe), "build_command": SITE_BUILD, "output_dir": "dist"}],
            "databases": [{"name": "db", "engine": "PG"}],
            "ingress": {"rules": [{"match": {"path": {"prefix": "/site"}}, "component": {"name": "site"}},
                                  {"match": {"path": {"prefix": "/"}}, "component": {"name": "web"}}]}},
        "beta": {"name": unique_name("beta"), "services": [
            _probe("web", probe, instance_size_slug="apps-s-1vcpu-0.5gb",
                   envs=[{"key": "GREETING", "value": "beta"}])]},
        "docker": {"name": unique_name("docker"), "services": [{
            "name": "hello", **_source(hello), "dockerfile_path": "Dockerfile", "health_check": HEALTH,
            "envs": [{"key": "GREETING", "value": "built-arg", "scope": "BUILD_TIME"}]}]},
        "pulled": {"name": unique_name("pulled"), "services": [{
            "name": "hello", "image": {**image, "registry_credentials": f"{USER}:{PASSWORD}"}, "health_check": HEALTH}]},
        "refused": {"name": unique_name("refused"), "services": [{
            "name": "hello", "image": {**image, "registry_credentials": f"{USER}:wrong-token"}}]},
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    reason = registry_available()
    if reason:
        pytest.skip(reason)
    # Not under pytest's own /tmp/pytest-of-<user>: every pytest session starting on the machine sets
    # that back to 0700, and the dev database server (run as the ``pgserver`` user) must traverse it.
    root = Path(tempfile.mkdtemp(prefix="shoal-containers-"))
    os.chmod(root, 0o755)
    registry = LoopbackRegistry(root / "registry").start()
    # The loopback registry is mirrored in so this session may push to it over plain HTTP.
    inspect = engine_session(root / "tests-engine", mirrors={"mirror.test": registry.host})
    before = image_ids(inspect.engine)
    stack(inspect.engine)
    # The tests poll deployments often, in parallel with shoal's own work: no API rate limit.
    server = LiveServer(data_dir=root / "data", runtime="container",
                        extra_args=["--registry-mirror", f"ghcr.io={registry.host}",
                                    "--rate-limit-per-minute", UNLIMITED, "--rate-limit-per-hour", UNLIMITED])
    try:
        push_hello(inspect.engine, registry, root / "push")
        hello = make_repo(root / "hello", {"hello.go": HELLO_GO, "Dockerfile": HELLO_DOCKERFILE})
        probe = make_repo(root / "probe", {"app.py": PROBE_APP, "requirements.txt": "", "Procfile": "web: python app.py\n"})
        server.start(timeout=120)
        found = World(server, root, inspect, registry)
        client = server.client()
        for role, spec in _specs(found, probe, hello).items():
            found.apps[role] = client.apps.create(body={"spec": spec})["app"]
        yield found
    finally:
        server.stop()
        registry.stop()
        leftovers = open_server_engine(root / "data")
        clean(leftovers, before)
        clean(inspect, before)
        shutil.rmtree(root, ignore_errors=True)


def open_server_engine(data_dir: Path) -> EngineSession:
    """A session with the server's own owner label, so ``clean`` removes what the server left."""
    return engine_session(data_dir)


def _deployed(world: World, role: str, timeout: float = 420) -> dict[str, Any]:
    client = world.server.client()
    app = world.apps[role]
    dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"], timeout=timeout)
    return {**client.apps.get(app["id"])["app"], "_deployment": dep}


def _ingress(world: World, app: dict[str, Any], path: str = "/") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{world.server.ingress_port}{path}", headers={"host": app["live_domain"]},
                     timeout=15)


def _logs(world: World, app: dict[str, Any], component: str, kind: str, deployment: str | None = None) -> str:
    client = world.server.client()
    found = client.apps.get_logs(app["id"], deployment or app["active_deployment"]["id"], component, type=kind)
    with world.server.http(anonymous=True) as http:
        return http.get(found["historic_urls"][0]).text


def _error(dep: dict[str, Any]) -> str:
    return " ".join(str(step.get("reason")) for step in _leaves(dep["progress"]["steps"]) if step.get("reason"))


def _leaves(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for step in steps:
        found.extend(_leaves(step["steps"]) if step.get("steps") else [step])
    return found


def test_a_multi_stage_dockerfile_app_answers_with_its_build_arg_and_a_redeploy_reuses_the_build(world: World) -> None:
    app = _deployed(world, "docker")
    assert app["_deployment"]["phase"] == "ACTIVE", _error(app["_deployment"])
    assert _ingress(world, app).text == "hello built-arg"  # BUILD_TIME only: it reached the build as an arg
    assert "STEP" in _logs(world, app, "hello", "BUILD")
    client = world.server.client()
    again = client.apps.create_deployment(app["id"], {"force_build": False})["deployment"]
    done = wait_deployment(client, app["id"], again["id"], timeout=180)
    assert done["phase"] == "ACTIVE"
    assert "PreviousBuildReused" in _logs(world, app, "hello", "BUILD", again["id"])
    assert _ingress(world, app).text == "hello built-arg"


def test_an_image_from_a_registry_runs_and_wrong_credentials_fail_clearly(world: World) -> None:
    app = _deployed(world, "pulled")
    assert app["_deployment"]["phase"] == "ACTIVE", _error(app["_deployment"])
    assert _ingress(world, app).text == "hello world"
    log = _logs(world, app, "hello", "BUILD")
    assert f"Pulling {world.registry.host}/team/hello:1 as {USER}" in log and PASSWORD not in log
    refused = _deployed(world, "refused")["_deployment"]
    assert refused["phase"] == "ERROR"
    assert "refused the credentials in registry_credentials" in _error(refused)
    assert "wrong-token" not in _error(refused)


def test_deleting_an_app_removes_its_containers_network_and_images(world: World) -> None:
    app = _deployed(world, "pulled")
    engine = world.inspect.engine
    assert world.running(app["id"])
    world.server.client().apps.delete(app["id"])
    wait_for(lambda: not engine.api.containers(all=True, filters={"label": f"shoal.app={app['id']}"}), timeout=60)
    wait_for(lambda: not [t for i in images.summaries(engine) for t in i.get("RepoTags") or [] if app["id"] in t],
             timeout=30)
    assert not [n for n in engine.client.networks.list() if app["id"] in (n.name or "")]


def test_components_reach_each_other_by_name_and_apps_cannot_reach_each_other(world: World) -> None:
    alpha, beta = _deployed(world, "alpha"), _deployed(world, "beta")
    assert alpha["_deployment"]["phase"] == "ACTIVE", _error(alpha["_deployment"])
    assert beta["_deployment"]["phase"] == "ACTIVE", _error(beta["_deployment"])
    # Both apps' services listen on 8080 inside their containers.
    assert _ingress(world, alpha, "/env/PORT").text == _ingress(world, beta, "/env/PORT").text == "8080"
    assert _ingress(world, alpha, "/env/API_URL").text == "http://api:8080"
    assert _ingress(world, alpha, "/fetch?url=http://api:8080/").text == "hello from api"
    # The SECRET is in alpha's instance only.
    assert _ingress(world, alpha, "/env/TOKEN").text == "alpha-secret-value"
    assert _ingress(world, beta, "/env/TOKEN").text == ""
    # beta can neither resolve alpha's components nor reach their addresses.
    assert _ingress(world, beta, "/fetch?url=http://api:8080/").text.startswith("unreachable")
    api = next(c for c in world.running(alpha["id"]) if c.labels.get("shoal.component") == "api")
    address = next(iter(api.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    assert _ingress(world, alpha, f"/fetch?url=http://{address}:8080/").text == "hello from api"
    assert _ingress(world, beta, f"/fetch?url=http://{address}:8080/").text.startswith("unreachable")
    # alpha reaches its dev database through its gateway; beta cannot reach that address's database.
    assert _ingress(world, alpha, "/pg").text == "postgres answered"
    database = httpx.URL(_ingress(world, alpha, "/env/DATABASE_URL").text.replace("postgresql://", "http://"))
    assert database.port == 5432
    assert _ingress(world, beta, f"/pg?host={database.host}&port=5432").text != "postgres answered"


def test_a_static_site_built_in_a_container_is_served(world: World) -> None:
    alpha = _deployed(world, "alpha")
    assert _ingress(world, alpha, "/site").text.strip() == "<h1>built in a container by 10001</h1>"


def test_run_logs_follow_the_containers(world: World) -> None:
    alpha = _deployed(world, "alpha")
    _ingress(world, alpha, "/env/PORT")
    wait_for(lambda: "served /env/PORT" in _logs(world, alpha, "web", "RUN"), timeout=20)
    assert "probe listening on 8080" in _logs(world, alpha, "web", "RUN")


def test_a_memory_hog_is_killed_reported_and_restarted(world: World) -> None:
    beta = _deployed(world, "beta")
    assert _answers(world, beta, "/hog") in (None, "")  # the instance died under the request (a 502)
    wait_for(lambda: "was killed for using more memory" in _logs(world, beta, "web", "RUN_RESTARTED"), timeout=60)
    assert "allocating until the limit stops me" in _logs(world, beta, "web", "RUN_RESTARTED")
    wait_for(lambda: _answers(world, beta) == "hello beta", timeout=60)
    # The restarted container's log still holds the first run: its lines are not sent again.
    wait_for(lambda: _logs(world, beta, "web", "RUN").count("probe listening on 8080") == 2, timeout=20)
    assert _logs(world, beta, "web", "RUN").count("allocating until the limit stops me") == 1
    instances = world.server.client().apps.get_instances(beta["id"])["instances"]
    assert len(instances) == 1


def _answers(world: World, app: dict[str, Any], path: str = "/") -> str | None:
    try:
        answer = _ingress(world, app, path)
        return answer.text if answer.status_code == 200 else ""
    except httpx.HTTPError:
        return None


def test_a_failing_pre_deploy_job_keeps_the_old_version_serving(world: World) -> None:
    beta = _deployed(world, "beta")
    client = world.server.client()
    spec = client.apps.get(beta["id"])["app"]["spec"]
    spec["services"][0]["envs"] = [{"key": "GREETING", "value": "beta v2"}]
    spec["jobs"] = [{"name": "migrate", "kind": "PRE_DEPLOY", **_source(world.root / "probe"),
                     "run_command": "echo migrating; exit 3"}]
    update = client.apps.update(beta["id"], {"spec": spec})["app"]
    dep = wait_deployment(client, beta["id"], update["pending_deployment"]["id"], timeout=240)
    assert dep["phase"] == "ERROR" and "exited with status 3" in _error(dep)
    assert _ingress(world, beta).text == "hello beta"
    assert "migrating" in _logs(world, beta, "migrate", "DEPLOY", dep["id"])


def test_doctl_console_runs_a_shell_inside_the_instances_container(world: World) -> None:
    alpha = _deployed(world, "alpha")
    answer = exec_url(world.server, alpha["id"], "web")
    assert answer.status_code == 200, answer.text
    session = DoctlConsole(answer.json()["url"], world.server.ca, width=91, height=37)
    try:
        # The container's own environment (the SECRET decrypted, PORT), user, files and hostname.
        session.type('echo "[$TOKEN|$PORT|$(id -u)|$(pwd)]"; ls; stty size\n')
        session.read_until("[alpha-secret-value|8080|10001|/workspace]")
        session.read_until("37 91")
        assert "app.py" in session.read_until("app.py")
        session.type("exit\n")
        assert session.wait_closed() == 1000
    finally:
        session.close()


def test_after_kill_9_and_a_restart_the_same_containers_run_and_the_app_answers(world: World) -> None:
    alpha = _deployed(world, "alpha")
    time.sleep(2)  # the previous test's deployment has finished discarding
    before = sorted(c.name for c in world.running())
    assert before
    world.server.kill()
    assert sorted(c.name for c in world.running()) == before  # containers outlive shoal
    world.server.start(timeout=180)
    wait_for(lambda: _answers(world, alpha) == "hello nobody", timeout=120)
    assert sorted(c.name for c in world.running()) == before  # adopted, not duplicated
    assert _ingress(world, alpha, "/fetch?url=http://api:8080/").text == "hello from api"
    assert _ingress(world, alpha, "/pg").text == "postgres answered"  # the forwarder is back too


def test_stopping_shoal_stops_the_containers_it_runs(world: World) -> None:
    assert world.running()
    assert world.server.stop() == 0
    assert world.running() == []
