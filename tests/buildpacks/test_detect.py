"""Detection over temp trees: which buildpack, in DigitalOcean's order, and what each language reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks import catalogue, detect, process_command, static_root
from shoal.runtime.buildpacks import golang, node, php, python, ruby
from shoal.runtime.buildpacks.detect import BUILDPACK_OF, SLUGS
from shoal.runtime.buildpacks.tree import Tree
from tests.buildpacks.apps import write


def tree(tmp_path: Path, *names: str) -> Path:
    """Empty files by name."""
    return write(tmp_path, {name: "" for name in names})


@pytest.mark.parametrize(("files", "language"), [
    (["requirements.txt"], "python"), (["Pipfile"], "python"), (["setup.py"], "python"), (["uv.lock"], "python"),
    (["package.json"], "node"), (["go.mod"], "go"), (["Gopkg.toml"], "go"), (["composer.json"], "php"),
    (["index.php"], "php"), (["Gemfile"], "ruby"), (["App.csproj"], "dotnet"), (["site.sln"], "dotnet"),
    (["index.html"], "html"), (["README.md"], "none"),
])
def test_each_language_is_detected_by_its_files(tmp_path: Path, files: list[str], language: str) -> None:
    assert detect(tree(tmp_path, *files)).language == language


def test_a_go_module_wins_over_hugo(tmp_path: Path) -> None:
    # A Hugo site using Hugo modules has a go.mod; DigitalOcean picks the Go buildpack for it.
    found = detect(tree(tmp_path, "go.mod", "hugo.toml", "content/_index.md"))
    assert (found.language, found.reason) == ("go", "go.mod found")


def test_hugo_needs_its_config_beside_content_layouts_or_themes(tmp_path: Path) -> None:
    assert detect(tree(tmp_path / "a", "config.toml")).language == "none"  # a config.toml alone is anybody's
    assert detect(tree(tmp_path / "b", "config.toml", "themes/x/theme.toml")).language == "hugo"
    assert detect(tree(tmp_path / "c", "hugo.yaml", "content/post.md")).language == "hugo"


def test_a_laravel_app_with_package_json_is_php_with_a_node_assets_build(tmp_path: Path) -> None:
    write(tmp_path, {"composer.json": "{}", "artisan": "", "public/index.php": "",
                     "package.json": json.dumps({"scripts": {"build": "vite build"}})})
    found = detect(tmp_path)
    assert found.language == "php" and found.assets
    assert found.buildpacks == ("digitalocean/php", "digitalocean/node")


def test_php_with_a_package_json_without_build_script_runs_no_node(tmp_path: Path) -> None:
    write(tmp_path, {"composer.json": "{}", "package.json": "{}"})
    assert detect(tmp_path).buildpacks == ("digitalocean/php",)


def test_a_rails_app_with_public_is_ruby_not_a_static_site(tmp_path: Path) -> None:
    write(tmp_path, {"Gemfile": 'gem "rails"', "public/index.html": "<h1>rails</h1>", "config.ru": ""})
    assert detect(tmp_path).language == "ruby"


def test_jekyll_is_told_from_ruby_by_its_config_and_gem(tmp_path: Path) -> None:
    write(tmp_path, {"Gemfile": 'gem "jekyll"', "_config.yml": "title: x"})
    assert detect(tmp_path).language == "jekyll"
    write(tmp_path / "plain", {"Gemfile": 'gem "sinatra"', "_config.yml": "title: x"})
    assert detect(tmp_path / "plain").language == "ruby"


@pytest.mark.parametrize(("dependency", "language"), [("gatsby", "gatsby"), ("hexo", "hexo"), ("react", "node")])
def test_node_static_generators_are_told_apart_by_dependency(tmp_path: Path, dependency: str, language: str) -> None:
    write(tmp_path, {"package.json": json.dumps({"dependencies": {dependency: "1"}})})
    assert detect(tmp_path).language == language


def test_python_comes_before_node(tmp_path: Path) -> None:
    assert detect(tree(tmp_path, "requirements.txt", "package.json")).language == "python"


def test_committed_static_dirs_count_only_without_a_build_command(tmp_path: Path) -> None:
    tree(tmp_path, "dist/app.js")
    assert detect(tmp_path).language == "html"
    assert detect(tmp_path, build_command="make").language == "none"


def test_environment_slug_wins_and_an_unknown_slug_is_reported(tmp_path: Path) -> None:
    tree(tmp_path, "requirements.txt", "config.toml")
    assert detect(tmp_path, "hugo").language == "hugo"
    assert detect(tmp_path, "ruby-on-rails").language == "ruby"
    found = detect(tmp_path, "cobol")
    assert (found.language, found.unknown_slug) == ("python", "cobol")


def test_every_slug_and_language_has_a_catalogue_entry() -> None:
    ids = {pack.id for pack in catalogue()}
    assert set(BUILDPACK_OF.values()) <= ids
    assert set(SLUGS.values()) <= set(BUILDPACK_OF)
    wire = catalogue()[0].wire()
    assert set(wire) == {"id", "version", "major_version", "latest", "name", "description", "docs_link"}
    assert wire["major_version"] == 1 and isinstance(wire["description"], list)


# -- what each language reads ------------------------------------------------------------------


def test_python_version_from_runtime_txt_then_python_version(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "", ".python-version": "# pinned\n3.12\n", "runtime.txt": "python-3.11.4"})
    found = python.facts(Tree(tmp_path))
    assert (found.manager, found.version, found.version_source) == ("pip", "3.11.4", "runtime.txt")
    (tmp_path / "runtime.txt").unlink()
    assert python.facts(Tree(tmp_path)).version == "3.12"


def test_a_misspelt_or_malformed_python_version_fails_clearly(tmp_path: Path) -> None:
    write(tmp_path / "a", {".python_version": "3.12"})
    with pytest.raises(StepFailed, match="must be named .python-version"):
        python.facts(Tree(tmp_path / "a"))
    write(tmp_path / "b", {".python-version": "latest"})
    with pytest.raises(StepFailed, match="'latest'"):
        python.facts(Tree(tmp_path / "b"))


@pytest.mark.parametrize(("files", "manager"), [
    (["uv.lock", "pyproject.toml"], "uv"), (["requirements.txt", "uv.lock"], "pip"), (["Pipfile"], "pipenv"),
    (["poetry.lock"], "poetry"), (["setup.py"], "setup.py"), (["manage.py"], "none"),
])
def test_python_package_manager(tmp_path: Path, files: list[str], manager: str) -> None:
    assert python.facts(Tree(tree(tmp_path, *files))).manager == manager


def test_django_is_found_by_manage_py_within_depth_three_and_its_requirement(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "Django==5.0\n", "src/site/manage.py": ""})
    found = python.facts(Tree(tmp_path))
    assert (found.django, found.manage_py) == (True, "src/site/manage.py")
    write(tmp_path / "flask", {"requirements.txt": "flask\n", "manage.py": ""})
    assert not python.facts(Tree(tmp_path / "flask")).django


@pytest.mark.parametrize(("lockfiles", "manager", "version"), [
    (["package-lock.json"], "npm", None), ([], "npm", None), (["yarn.lock"], "yarn", node.YARN_CLASSIC),
    (["pnpm-lock.yaml"], "pnpm", node.PNPM_DEFAULT),
    (["yarn.lock", "pnpm-lock.yaml", "package-lock.json"], "yarn", node.YARN_CLASSIC),  # DO: yarn, pnpm, npm
])
def test_node_package_manager_from_the_lockfile(tmp_path: Path, lockfiles: list[str], manager: str,
                                                version: str | None) -> None:
    found = node.facts(Tree(tree(tmp_path, "package.json", *lockfiles)))
    assert (found.manager, found.manager_version) == (manager, version)


def test_node_manager_version_from_package_manager_engines_or_the_lockfile_format(tmp_path: Path) -> None:
    write(tmp_path, {"package.json": json.dumps({"packageManager": "pnpm@8.15.1+sha256.abc"}),
                     "pnpm-lock.yaml": "lockfileVersion: '6.0'\n"})
    assert node.facts(Tree(tmp_path)).manager_version == "8.15.1"
    write(tmp_path, {"package.json": json.dumps({"engines": {"yarn": "1.22.19"}}), "yarn.lock": ""})
    assert node.facts(Tree(tmp_path)).manager_version == "1.22.19"
    write(tmp_path / "berry", {"package.json": "{}", "yarn.lock": "__metadata:\n  version: 8\n"})
    assert node.facts(Tree(tmp_path / "berry")).manager_version == node.YARN_BERRY
    write(tmp_path / "p6", {"package.json": "{}", "pnpm-lock.yaml": "lockfileVersion: '6.0'\n"})
    assert node.facts(Tree(tmp_path / "p6")).manager_version == node.PNPM_BY_LOCKFILE["6"]


def test_engines_node_is_an_npm_range(tmp_path: Path) -> None:
    write(tmp_path, {"package.json": json.dumps({"engines": {"node": ">=18 <21 || 22.x"}})})
    wanted = node.node_wanted(node.facts(Tree(tmp_path)))
    assert [v for v in ("16.20.0", "18.0.0", "20.20.2", "21.1.0", "22.3.0") if wanted.accepts(v)] == \
        ["18.0.0", "20.20.2", "22.3.0"]
    assert wanted.pick(["20.18.0", "22.20.0", "24.1.0"]) == "22.20.0"


def test_go_facts_from_go_mod_and_environment(tmp_path: Path) -> None:
    write(tmp_path, {"go.mod": 'module "github.com/acme/sample-golang"\n// +heroku goVersion go1.21\ngo 1.22\n',
                     "vendor/modules.txt": "", "go.sum": "x v1 h1:y\n"})
    found = golang.facts(Tree(tmp_path), {})
    assert (found.module, found.version, found.version_source, found.vendored) == (
        "github.com/acme/sample-golang", "1.21", "go.mod // +heroku goVersion", True)
    assert golang.facts(Tree(tmp_path), {"GOVERSION": "go1.23"}).version == "1.23"
    assert golang.facts(Tree(tmp_path), {"GO_INSTALL_PACKAGE_SPEC": "./cmd/a ./cmd/b"}).packages == (
        "./cmd/a", "./cmd/b")


def test_go_vendor_needs_a_go_sum(tmp_path: Path) -> None:
    write(tmp_path, {"go.mod": "module x\ngo 1.22\n", "vendor/modules.txt": ""})
    assert not golang.facts(Tree(tmp_path), {}).vendored


def test_php_requires_a_lock_only_for_packages(tmp_path: Path) -> None:
    write(tmp_path, {"composer.json": json.dumps({"require": {"php": "^8.1", "ext-json": "*"}})})
    assert not php.needs_lock(Tree(tmp_path))
    write(tmp_path, {"composer.json": json.dumps({"require": {"laravel/framework": "^11"}})})
    assert php.needs_lock(Tree(tmp_path))


def test_ruby_version_requirements() -> None:
    assert ruby.satisfies("3.1.2", "~> 3.1") and not ruby.satisfies("4.0.0", "~> 3.1")
    assert ruby.satisfies("3.1.2", "3.1.2") and not ruby.satisfies("3.1.2", "3.3.9")
    assert ruby.satisfies("3.1.2", ">= 3.0, < 3.2") and not ruby.satisfies("3.1.2", "~> 3.1.3")
    with pytest.raises(ValueError):
        ruby.satisfies("3.1.2", "three")


def test_ruby_wanted_from_gemfile_then_lock_and_rails_major(tmp_path: Path) -> None:
    write(tmp_path, {"Gemfile": "source 'x'\nruby '3.3.9'\n",
                     "Gemfile.lock": "GEM\n  specs:\n    railties (7.1.3)\n\nRUBY VERSION\n   ruby 3.2.0p0\n"})
    assert ruby.ruby_wanted(Tree(tmp_path)) == ("3.3.9", "Gemfile")
    assert ruby.rails_major(Tree(tmp_path)) == 7
    (tmp_path / "Gemfile").write_text("source 'x'\n")
    assert ruby.ruby_wanted(Tree(tmp_path)) == ("3.2.0", "Gemfile.lock")


# -- how it runs ----------------------------------------------------------------------------------


def test_run_command_then_procfile_then_buildpack_default(tmp_path: Path) -> None:
    write(tmp_path, {"Procfile": "# comment\nweb: bin/server\nworker: bin/work\nmigrate: bin/migrate\n"})
    defaults = {"web": "bin/default"}
    assert process_command("service", "web", "./run", tmp_path, defaults) == "./run"
    assert process_command("service", "web", None, tmp_path, defaults) == "bin/server"
    assert process_command("worker", "w", None, tmp_path, defaults) == "bin/work"
    assert process_command("job", "migrate", None, tmp_path, defaults) == "bin/migrate"
    assert process_command("static_site", "site", None, tmp_path, defaults) is None
    (tmp_path / "Procfile").unlink()
    assert process_command("service", "web", None, tmp_path, defaults) == "bin/default"


def test_static_root_prefers_output_dir_then_the_generators_then_do_defaults(tmp_path: Path) -> None:
    write(tmp_path, {"public/index.html": "", "_site/index.html": "", "dist/index.html": ""})
    assert static_root(tmp_path, "staticfiles") == tmp_path / "staticfiles"
    assert static_root(tmp_path, None, "_site") == tmp_path / "_site"
    assert static_root(tmp_path, None) == tmp_path / "dist"
    assert static_root(tmp_path, "../../etc") is None


def test_pipfile_pins_become_pip_requirements_without_pipenv(tmp_path: Path) -> None:
    write(tmp_path, {"Pipfile.lock": json.dumps({"default": {"flask": {"version": "==3.0.0"}, "rich": {}}})})
    assert python.pipfile_requirements(Tree(tmp_path), lambda line: None) == ["flask==3.0.0", "rich"]
    write(tmp_path / "plain", {"Pipfile": '[packages]\nrequests = "*"\nhttpx = {version = ">=0.27", '
                                          'extras = ["http2"]}\nmine = {path = "."}\n'})
    said: list[str] = []
    assert python.pipfile_requirements(Tree(tmp_path / "plain"), said.append) == ["requests", "httpx[http2]>=0.27"]
    assert said == ["=> Skipping Pipfile entry 'mine': only version requirements are supported without pipenv"]


def test_the_tree_does_not_read_through_links_out_of_it_nor_from_fifos(tmp_path: Path) -> None:
    import os

    secret = tmp_path / "server-secret"
    secret.write_text("web: the-admin-token-value\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").symlink_to(secret)  # committed in the repo as a link to a file of the server's
    (app / "package.json").symlink_to("/etc/hostname")
    os.mkfifo(app / "requirements.txt")  # reading it would block for ever
    (app / "real.json").write_text('{"name": "inside"}')
    (app / "linked.json").symlink_to("real.json")  # a link inside the tree is read as usual
    tree = Tree(app)
    assert tree.procfile() == {} and tree.text("Procfile") == "" and not tree.has("Procfile")
    assert tree.package_json() == {} and tree.text("requirements.txt") == "" and not tree.has("requirements.txt")
    assert tree.json("linked.json") == {"name": "inside"}
    assert tree.glob("*.json") == ["linked.json", "real.json"]
    assert detect(app).language == "none"
