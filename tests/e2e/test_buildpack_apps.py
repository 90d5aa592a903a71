"""Issue 16's acceptance: typical App Platform apps per language, deployed through pydo on ``shoal serve
--runtime local`` and ``--runtime container``, each answering with its own content through the ingress.

The apps come from ``tests/buildpacks/apps.py`` and are committed to git repos made in a temp dir. On
the process runtime each test needs its toolchain on the machine (``.ci/run`` installs Debian's) and is
skipped, naming it, where it is missing; on the container runtime the stack image holds the toolchains
(podman is what it needs). Deploy times beside the same build done by hand are in ``bench/buildpacks.py apps``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import HttpResponseError

from tests.buildpacks import apps
from tests.conftest import leaves, unique_name, wait_deployment
from tests.e2e.apps import git
from tests.containers import clean, engine_session, image_ids, podman_missing, stack
from tests.live import UNLIMITED, LiveServer


@pytest.fixture(scope="module", params=["local", "container"])
def local(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if request.param == "local":
        root = tmp_path_factory.mktemp("buildpacks")
        server = LiveServer(data_dir=root / "data", runtime="local").start()
        yield server, root
        server.stop()
        return
    missing = podman_missing()
    if missing:
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("buildpacks-container")
    inspect = engine_session(root / "tests-engine")
    before = image_ids(inspect.engine)
    stack(inspect.engine)
    server = LiveServer(data_dir=root / "data", runtime="container", extra_args=UNLIMITED)
    try:
        server.start(timeout=120)
        yield server, root
    finally:
        server.stop()
        clean(engine_session(root / "data"), before)  # what the server labelled and left
        clean(inspect, before)


def needs(platform: Any, *tools: str) -> None:
    """The process runtime builds with the machine's toolchains; the container runtime with the stack's."""
    if platform[0].runtime != "local":
        return
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on this machine (see .ci/run)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def committed(repo: Path) -> Path:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "app")
    return repo


def source(repo: Path) -> dict[str, Any]:
    return {"git": {"repo_clone_url": str(repo), "branch": "main"}}


def deploy(server: LiveServer, spec: dict[str, Any], timeout: float = 300) -> tuple[dict[str, Any], dict[str, Any]]:
    client = server.client()
    created = client.apps.create(body={"spec": {"name": unique_name(spec.pop("prefix")), **spec}})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=timeout)
    if dep["phase"] != "ACTIVE":  # the logs say why, in the assertion's message
        with server.http(anonymous=True) as http:
            for kind in ("BUILD", "DEPLOY"):
                try:  # a failed build has no DEPLOY logs (the API says so with a 400)
                    answer = client.apps.get_logs_aggregate(created["id"], dep["id"], type=kind)
                except HttpResponseError:
                    continue
                dep.setdefault("_logs", {})[kind] = http.get(answer["historic_urls"][0]).text[-3000:]
    return client.apps.get(created["id"])["app"], dep


def get(server: LiveServer, app: dict[str, Any], path: str = "/") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.ingress_port}{path}", headers={"host": app["live_domain"]},
                     timeout=30)


def active(dep: dict[str, Any]) -> None:
    reasons = [s["reason"] for s in leaves(dep["progress"]["steps"]) if s.get("reason")]
    assert dep["phase"] == "ACTIVE", (reasons, dep.get("_logs"))


def test_django_with_a_static_site_component_for_collected_files(local: Any) -> None:
    server, root = local
    repo = committed(apps.write(root / "django", apps.DJANGO))
    # As DigitalOcean's Django sample: the service skips collectstatic, the static site serves staticfiles.
    app, dep = deploy(server, {
        "prefix": "django",
        "services": [{"name": "web", **source(repo), "routes": [{"path": "/"}],
                      "envs": [{"key": "DISABLE_COLLECTSTATIC", "value": "1", "scope": "BUILD_TIME"}]}],
        "static_sites": [{"name": "static", **source(repo), "output_dir": "staticfiles",
                          "routes": [{"path": "/static"}]}],
    })
    active(dep)
    assert get(server, app).text == "hello from django\n"
    assert get(server, app, "/static/hello/site.css").text == "body { color: teal; }\n"


def test_go_module_with_a_procfile(local: Any) -> None:
    needs(local, "go")
    server, root = local
    repo = committed(apps.go_app(root / "go", go="1.19"))
    app, dep = deploy(server, {"prefix": "go", "services": [{"name": "web", **source(repo),
                                                             "envs": [{"key": "GOPROXY", "value": "off"}]}]})
    active(dep)
    assert get(server, app).text == "hello from go\n"


def test_laravel_shaped_php(local: Any) -> None:
    needs(local, "php", "composer", "node")
    server, root = local
    repo = committed(apps.php_app(root / "php"))
    app, dep = deploy(server, {"prefix": "laravel", "services": [{"name": "web", **source(repo)}]})
    active(dep)
    assert get(server, app, "/users/7").text == "hello from php at /users/7\n"
    assert get(server, app, "/app.css").text == "built assets\n"


def test_sinatra_app(local: Any) -> None:
    needs(local, "ruby", "bundle")
    if local[0].runtime == "container":
        # The process runtime's bundler finds Debian's sinatra and puma on the host (.ci/run installs
        # them); in the stack image bundler fetches them from rubygems.org ("Could not reach host
        # index.rubygems.org" here). With rubygems.org (or a mirror, BUNDLE_MIRROR__...) the same app builds.
        pytest.skip("a Ruby app's gems come from rubygems.org in a container build: not reachable here")
    server, root = local
    repo = committed(apps.sinatra_app(root / "sinatra"))
    app, dep = deploy(server, {"prefix": "sinatra", "services": [{"name": "web", **source(repo)}]})
    active(dep)
    assert get(server, app).text == "hello from sinatra\n"


def test_hugo_site_with_its_theme_as_a_submodule(local: Any) -> None:
    needs(local, "hugo")
    server, root = local
    theme = root / "theme"
    apps.hugo_site(root / "hugo", theme=theme)
    committed(theme)
    site = committed(root / "hugo")
    subprocess.run(["git", "-C", str(site), "-c", "protocol.file.allow=always", "submodule", "add", "-q",
                    str(theme), "themes/plain"], check=True, capture_output=True)
    git(site, "commit", "-q", "-m", "theme")
    app, dep = deploy(server, {"prefix": "hugo", "static_sites": [{"name": "site", **source(site),
                                                                   "environment_slug": "hugo"}]})
    active(dep)
    page = get(server, app).text
    assert "hello from hugo" in page and "First post" in page


def test_hexo_site_is_generated_and_served(local: Any) -> None:
    needs(local, "node")
    server, root = local
    site = committed(apps.write(root / "hexo", apps.HEXO_SITE))
    app, dep = deploy(server, {"prefix": "hexo", "static_sites": [{"name": "site", **source(site)}]})
    active(dep)
    assert get(server, app).text.strip() == "<h1>Hello Hexo</h1><p>First post</p>"


@pytest.mark.parametrize("manager", ["yarn", "yarn4", "pnpm"])
def test_node_app_locked_by(local: Any, manager: str) -> None:
    needs(local, "node", "corepack")
    server, root = local
    repo = committed(apps.node_app(root / f"node-{manager}", manager))
    app, dep = deploy(server, {"prefix": manager, "services": [{"name": "web", **source(repo)}]})
    active(dep)
    assert get(server, app).text == f"hello from node, 1m, built by {manager.rstrip('4')}\n"


def test_an_app_that_hard_codes_its_port_is_told_so(local: Any) -> None:
    server, root = local
    fixed = free_port()  # 8080 in real apps; a free one here, as this machine may serve 8080 itself
    repo = committed(apps.write(root / "fixed-port", {
        "requirements.txt": "",
        "app.py": "from http.server import HTTPServer, SimpleHTTPRequestHandler\n"
                  f"HTTPServer(('127.0.0.1', {fixed}), SimpleHTTPRequestHandler).serve_forever()\n",
    }))
    app, dep = deploy(server, {"prefix": "fixed", "services": [{
        "name": "web", **source(repo), "health_check": {"initial_delay_seconds": 0, "period_seconds": 1,
                                                        "failure_threshold": 3}}]})
    assert dep["phase"] == "ERROR"
    reason = next(s["reason"] for s in leaves(dep["progress"]["steps"]) if s.get("reason"))
    assert reason["code"] == "ContainerHealthChecksFailed"
    assert reason["message"].startswith(f"web listens on {fixed}, not on $PORT=")
