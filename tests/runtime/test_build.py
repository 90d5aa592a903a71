"""The local builder with real tools (venv + pip, npm, /bin/sh) on tiny trees; nothing needs the network."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from shoal.domain.deployments import StepFailed
from shoal.domain.plan import KINDS, units_of
from shoal.runtime.local.build import MARKER, Builder, BuildResult
from shoal.runtime.local.sources import SourceCache, SourceRef

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class Lines(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def tiny_wheel(folder: Path) -> Path:
    """A real, minimal wheel (``tinypkg``), so pip installs it without an index or a build backend."""
    files = {
        "tinypkg/__init__.py": "VALUE = 42\n",
        "tinypkg-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
        "tinypkg-0.1.dist-info/WHEEL":
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    files["tinypkg-0.1.dist-info/RECORD"] = "\n".join([*record, "tinypkg-0.1.dist-info/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "tinypkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


def build(builder: Builder, checkout: Path, spec: dict[str, Any], *, kind: str = "service",
          env: dict[str, str] | None = None, force: bool = False, commit: str = COMMIT,
          log: Lines | None = None) -> BuildResult:
    key = next(key for key, found in KINDS if found == kind)
    unit = units_of({"name": "app", key: [{"name": "web", **spec}]})[0]
    return asyncio.run(builder.build(app_id="app-1", unit=unit, commit=commit, checkout=checkout,
                                     build_env=env or {}, force=force, log=log if log is not None else Lines()))


@pytest.fixture
def builder(tmp_path: Path) -> Builder:
    return Builder(tmp_path / "builds")


def test_python_build_installs_requirements_into_a_venv_and_is_reused(tmp_path: Path, builder: Builder) -> None:
    checkout = tree(tmp_path / "src", {"requirements.txt": "./wheels/tinypkg-0.1-py3-none-any.whl\n",
                                       "main.py": "import tinypkg\n"})
    tiny_wheel(checkout / "wheels")
    log = Lines()
    env = {"PIP_NO_INDEX": "1"}  # proves nothing is fetched from PyPI
    result = build(builder, checkout, {"name": "web"}, env=env, log=log)
    assert (result.stack, result.reused, result.run_command) == ("python", False, "python main.py")
    venv = Path(result.env["VIRTUAL_ENV"])
    assert result.env["PATH"].startswith(str(venv / "bin") + ":")
    imported = subprocess.run([str(venv / "bin" / "python"), "-c", "import tinypkg; print(tinypkg.VALUE)"],
                              capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "42"
    assert any("tinypkg" in line and "Installed" in line or "+ tinypkg==0.1" in line for line in log)
    assert (result.app_dir / "main.py").is_file() and result.app_dir.is_relative_to(builder_root(tmp_path))

    again, started = Lines(), time.monotonic()
    reused = build(builder, checkout, {"name": "web"}, env=env, log=again)
    assert time.monotonic() - started < 1.0
    assert reused.reused and reused.app_dir == result.app_dir and reused.env == result.env
    assert any(line.startswith("PreviousBuildReused:") for line in again)


def builder_root(tmp_path: Path) -> Path:
    return tmp_path / "builds" / "app-1" / "web"


def test_build_command_runs_with_build_env_and_force_rebuilds(tmp_path: Path, builder: Builder) -> None:
    checkout = tree(tmp_path / "src", {"run.sh": "echo hi\n"})
    spec = {"name": "web", "build_command": 'echo "built for $GREETING"; echo "$GREETING" > out.txt',
            "run_command": "sh run.sh"}
    log = Lines()
    first = build(builder, checkout, spec, env={"GREETING": "one"}, log=log)
    assert (first.stack, first.run_command, set(first.env)) == ("none", "sh run.sh", {"PATH"})
    assert (first.app_dir / "out.txt").read_text() == "one\n" and "built for one" in log
    assert build(builder, checkout, spec, env={"GREETING": "one"}).reused
    forced = build(builder, checkout, spec, env={"GREETING": "one"}, force=True)
    assert not forced.reused and forced.app_dir == first.app_dir
    changed = build(builder, checkout, spec, env={"GREETING": "two"})  # a build-time variable is an input
    assert not changed.reused and changed.app_dir != first.app_dir
    assert (changed.app_dir / "out.txt").read_text() == "two\n"


def test_half_finished_build_is_redone(tmp_path: Path, builder: Builder) -> None:
    checkout = tree(tmp_path / "src", {"index.html": "<h1>hi</h1>"})
    first = build(builder, checkout, {"name": "web"}, kind="static_site")
    assert first.static_root == first.app_dir and first.stack == "html"
    (first.app_dir.parent / MARKER).unlink()  # as if the process died before the marker was written
    assert not build(builder, checkout, {"name": "web"}, kind="static_site").reused


def test_old_builds_are_pruned(tmp_path: Path, builder: Builder) -> None:
    checkout = tree(tmp_path / "src", {"a.txt": "a"})
    for n in range(5):
        build(builder, checkout, {"name": "web", "build_command": "true"}, commit=f"{n:040d}")
    assert len([d for d in builder_root(tmp_path).iterdir() if d.is_dir()]) == 3


def test_builds_in_use_are_never_pruned(tmp_path: Path) -> None:
    running: list[Path] = []
    builder = Builder(tmp_path / "builds", in_use=lambda: running)
    checkout = tree(tmp_path / "src", {"a.txt": "a"})
    serving = build(builder, checkout, {"name": "web"}, commit="1" * 40)
    running.append(serving.app_dir)
    for n in range(2, 7):  # later deployments that never went live
        build(builder, checkout, {"name": "web"}, commit=str(n) * 40)
    assert serving.app_dir.is_dir()
    assert len([d for d in builder_root(tmp_path).iterdir() if d.is_dir()]) == 4


def test_failing_build_command_is_exit_non_zero(tmp_path: Path, builder: Builder) -> None:
    checkout = tree(tmp_path / "src", {"a.txt": "a"})
    log = Lines()
    with pytest.raises(StepFailed) as failed:
        build(builder, checkout, {"name": "web", "build_command": "echo broken >&2; exit 3"}, log=log)
    assert failed.value.code == "BuildJobExitNonZero"
    assert failed.value.message == "echo broken >&2; exit 3 exited with status 3"
    assert "broken" in log
    retried = build(builder, checkout, {"name": "web", "build_command": "true"})
    assert not retried.reused


def test_source_dir_and_missing_source_dir(tmp_path: Path, builder: Builder) -> None:
    checkout = tree(tmp_path / "src", {"site/public/index.html": "<p>x</p>", "README": "r"})
    result = build(builder, checkout, {"name": "web", "source_dir": "/site"}, kind="static_site")
    assert result.app_dir.name == "site" and result.static_root == result.app_dir / "public"
    with pytest.raises(StepFailed, match="source_dir 'nope'"):
        build(builder, checkout, {"name": "web", "source_dir": "nope"})
    # It used to say the missing output dir "was found".
    with pytest.raises(StepFailed, match="output_dir 'out' was not found after the build") as failed:
        build(builder, checkout, {"name": "web", "source_dir": "site", "output_dir": "out"}, kind="static_site")
    assert failed.value.code == "BuildJobFailed"


def test_container_builds_fail_clearly(tmp_path: Path, builder: Builder) -> None:
    checkout = tree(tmp_path / "src", {"Dockerfile": "FROM scratch\n"})
    for spec in ({"name": "web", "dockerfile_path": "Dockerfile"},
                 {"name": "web", "image": {"registry_type": "DOCKER_HUB", "repository": "nginx"}}):
        with pytest.raises(StepFailed, match="needs a container engine") as failed:
            build(builder, checkout, spec)
        assert failed.value.code == "BuildJobFailed"


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_node_build_runs_the_build_script(tmp_path: Path, builder: Builder) -> None:
    package = {"name": "site", "version": "1.0.0", "private": True, "scripts": {"build": "node build.js"}}
    checkout = tree(tmp_path / "src", {
        "package.json": json.dumps(package),
        "build.js": "const fs = require('fs'); fs.mkdirSync('dist', {recursive: true});\n"
                    "fs.writeFileSync('dist/index.html', '<h1>' + process.env.TITLE + '</h1>');\n",
    })
    log = Lines()
    result = build(builder, checkout, {"name": "site"}, kind="static_site", env={"TITLE": "built"}, log=log)
    assert result.stack == "node" and "=> Running npm run build" in log
    assert result.static_root == result.app_dir / "dist"
    assert (result.app_dir / "dist" / "index.html").read_text() == "<h1>built</h1>"
    assert result.env["NODE_ENV"] == "production"


def test_from_git_to_build(tmp_path: Path, builder: Builder) -> None:
    repo = tmp_path / "repo"
    tree(repo, {"Procfile": "web: sh serve.sh\n", "serve.sh": "echo serving\n"})
    run = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*run, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*run, "add", "-A"], check=True)
    subprocess.run([*run, "commit", "-q", "-m", "first"], check=True)
    cache, ref = SourceCache(tmp_path / "cache"), SourceRef(repo.as_uri(), "main")
    sha = asyncio.run(cache.fetch(ref, Lines()))
    asyncio.run(cache.export(ref, sha, tmp_path / "checkout"))
    result = build(builder, tmp_path / "checkout", {"name": "web"}, commit=sha)
    assert result.run_command == "sh serve.sh" and (result.app_dir / "serve.sh").is_file()
