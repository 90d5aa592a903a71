"""Stack detection, run commands and static roots, by calling the functions on small trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoal.domain.plan import KINDS, RunUnit, units_of
from shoal.runtime.local.detect import detect, procfile, run_command, slug_stack, static_root


def unit(kind: str, spec: dict[str, object]) -> RunUnit:
    """The run unit of one component of ``kind`` described by ``spec``."""
    key = next(key for key, found in KINDS if found == kind)
    return units_of({"name": "app", key: [spec]})[0]


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(("files", "build_command", "stack"), [
    ({"requirements.txt": "flask\n"}, None, "python"),
    ({"pyproject.toml": "[project]\nname='x'\n"}, None, "python"),
    ({"Pipfile": "[packages]\n"}, None, "python"),
    ({"package.json": "{}"}, None, "node"),
    ({"package.json": "{}", "requirements.txt": ""}, None, "python"),  # Python apps with front-end assets
    ({"index.html": "<h1>hi</h1>"}, None, "static"),
    ({"public/index.html": "<h1>hi</h1>"}, None, "static"),
    ({"public/index.html": "<h1>hi</h1>"}, "hugo", "custom"),  # dirs a build would produce decide nothing
    ({"Makefile": "all:\n"}, "make", "custom"),
    ({}, None, "custom"),
])
def test_detect_from_files(tmp_path: Path, files: dict[str, str], build_command: str | None, stack: str) -> None:
    assert detect(tree(tmp_path, files), None, build_command) == stack


def test_environment_slug_wins(tmp_path: Path) -> None:
    app = tree(tmp_path, {"requirements.txt": "", "package.json": "{}"})
    assert detect(app, "node-js", None) == "node"
    assert detect(app, "html", None) == "static"
    assert detect(tree(tmp_path / "n", {"package.json": "{}"}), "python", None) == "python"
    # A slug with no local builder falls back to the files.
    assert slug_stack("go") is None
    assert detect(app, "go", None) == "python"


def test_procfile_lines(tmp_path: Path) -> None:
    app = tree(tmp_path, {"Procfile": "# comment\nweb: gunicorn app:app --bind :$PORT\n\n"
                                      "worker: celery -A tasks worker\nmigrate: python manage.py migrate\n"
                                      "web: ignored second web\n"})
    assert procfile(app) == {"web": "gunicorn app:app --bind :$PORT", "worker": "celery -A tasks worker",
                             "migrate": "python manage.py migrate"}
    assert run_command(unit("service", {"name": "api"}), app, "python") == "gunicorn app:app --bind :$PORT"
    assert run_command(unit("worker", {"name": "bg"}), app, "python") == "celery -A tasks worker"
    assert run_command(unit("job", {"name": "migrate"}), app, "python") == "python manage.py migrate"
    assert run_command(unit("job", {"name": "other"}), app, "custom") is None
    assert run_command(unit("service", {"name": "api", "run_command": "./serve"}), app, "python") == "./serve"


def test_stack_default_run_commands(tmp_path: Path) -> None:
    node = tree(tmp_path / "node", {"package.json": json.dumps({"scripts": {"start": "node index.js"}})})
    assert run_command(unit("service", {}), node, "node") == "npm start"
    bare = tree(tmp_path / "bare", {"package.json": "{}", "server.js": ""})
    assert run_command(unit("service", {}), bare, "node") == "npm start"
    assert run_command(unit("service", {}), tree(tmp_path / "none", {"package.json": "{}"}), "node") is None
    assert run_command(unit("service", {}), tree(tmp_path / "py", {"app.py": "", "main.py": ""}), "python") == \
        "python main.py"
    assert run_command(unit("worker", {}), tree(tmp_path / "py2", {"app.py": ""}), "python") == "python app.py"
    assert run_command(unit("service", {}), tree(tmp_path / "py3", {"requirements.txt": ""}), "python") is None
    assert run_command(unit("static_site", {}), node, "node") is None


def test_static_root_defaults(tmp_path: Path) -> None:
    app = tree(tmp_path, {"index.html": "", "public/index.html": "", "dist/index.html": ""})
    assert static_root(app, "out") == app / "out"
    assert static_root(app, "/site/") == app / "site"
    assert static_root(app, "../escape") is None
    assert static_root(app, None) == app / "dist"  # DigitalOcean's order: _static, dist, public, build
    (app / "_static").mkdir()
    assert static_root(app, None) == app / "_static"
    only_index = tree(tmp_path / "plain", {"index.html": ""})
    assert static_root(only_index, None) == only_index
    assert static_root(tree(tmp_path / "empty", {"x.txt": ""}), None) is None
