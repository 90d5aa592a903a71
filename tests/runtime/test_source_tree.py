"""What a checked-out tree would be built as (``runtime.source_tree``), on real directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoal.core.errors import UnprocessableEntity
from shoal.runtime.source_tree import deploy_template, examine


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_static_site_generator_is_built_by_its_buildpack(tmp_path: Path) -> None:
    site = tree(tmp_path, {"hugo.toml": "title = 'x'\n", "content/_index.md": "hi\n"})
    [component] = examine(site, ".").components
    assert (component.strategy, component.types, component.environment_slug) == ("BUILDPACK", ("Hugo",), "hugo")
    assert component.http_ports == () and component.run_command == ""


def test_a_php_app_with_an_asset_build_lists_both_buildpacks(tmp_path: Path) -> None:
    app = tree(tmp_path, {"composer.json": "{}", "package.json": json.dumps({"scripts": {"build": "vite build"}})})
    [component] = examine(app, ".").components
    assert component.types == ("PHP", "Node.js")
    assert [b.id for b in component.buildpacks] == ["digitalocean/php", "digitalocean/node"]
    assert component.run_command == "heroku-php-apache2"


def test_dockerfile_ports(tmp_path: Path) -> None:
    app = tree(tmp_path, {"Dockerfile": "FROM x\nexpose 53/udp 8000\nEXPOSE 9000 8000 70000 $PORT\n"})
    [component] = examine(app, ".").components
    assert component.http_ports == (8000, 9000)
    (app / "Dockerfile").write_text("FROM x\n")
    assert examine(app, ".").components[0].http_ports == (8080,)


def test_an_invalid_functions_project_is_still_serverless(tmp_path: Path) -> None:
    app = tree(tmp_path, {"project.yml": "packages: 3\n"})
    [component] = examine(app, ".").components
    assert component.strategy == "SERVERLESS" and component.serverless_packages == ()


def test_source_dir_must_stay_inside(tmp_path: Path) -> None:
    repo = tree(tmp_path / "repo", {"index.html": ""})
    (tmp_path / "outside").mkdir()
    (repo / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(UnprocessableEntity, match="leaves the repository"):
        examine(repo, "link")


def test_deploy_template_shapes(tmp_path: Path) -> None:
    assert not deploy_template(tmp_path).found
    tree(tmp_path, {".do/deploy.template.yaml": "name: no-spec-key\n"})
    found = deploy_template(tmp_path)
    assert found.found and not found.valid and "top-level spec" in found.error
    (tmp_path / "elsewhere.yaml").write_text("spec: {name: x}\n")
    (tmp_path / ".do/deploy.template.yaml").unlink()
    (tmp_path / ".do/deploy.template.yaml").symlink_to("/etc/hostname")
    assert not deploy_template(tmp_path).found  # a link out of the repository is not its template
