"""Building a Functions project: the project checked, each action's dependencies installed, as recipe steps.

Role: the functions counterpart of a buildpack planner (``shoal.runtime.buildpacks``): read and check the
project (``shoal.domain.functions.project``; every problem fails the build with its file and path, and each
``${VAR}`` must be one of the component's variables — values are not known before deploy, names are), and
return a ``Recipe`` whose steps an ``Executor`` carries out — the host's for the process runtime, a build
container's later. What is installed follows DigitalOcean's deployer (reference §3.1): a top-level ``lib/``
first; then per directory action its ``build.sh``; else ``package.json`` (``npm ci``/``npm install``
without dev dependencies, then ``npm run build`` when there is such a script); else ``requirements.txt``:
a ``virtualenv`` directory inside the action — with ``uv`` when available — that the Python worker puts on
its path. Only Python and Node.js actions run on shoal; others fail the build with a message saying so.

Must not: run anything (the executor does), or know where the result will run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from shoal.domain.deployments import StepFailed
from shoal.domain.functions.model import PROJECT_FILE, Project, ProjectInvalid
from shoal.domain.functions.project import read_project
from shoal.domain.plan import RunUnit
from shoal.runtime.buildpacks import Action, BuildContext, Recipe, Toolchains
from shoal.runtime.buildpacks.recipe import Log

RUNNABLE = ("python", "nodejs")
BUILDPACK = "shoal/functions"
_SKIPPED_DIRS = frozenset({".git", "node_modules", "virtualenv", "__pycache__", ".venv"})


def project_files(root: Path) -> list[str]:
    """Relative paths of the project's files (installed dependencies and VCS data skipped)."""
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS]
        base = Path(directory).relative_to(root)
        found += [str(base / name) for name in files]
    return found


def load_project(root: Path, env: Mapping[str, str] | None) -> Project:
    """The project at ``root`` (``ProjectInvalid`` with every problem)."""
    path = root / PROJECT_FILE
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
    return read_project(text, project_files(root), env)


def checked_project(root: Path, unit: RunUnit, build_env: Mapping[str, str], log: Log) -> Project:
    """The project, its problems logged one per line and raised as ``BuildJobFailed``."""
    declared = {**{var.key: "" for var in unit.run_env}, **build_env}
    try:
        project = load_project(root, declared)
    except ProjectInvalid as invalid:
        for problem in invalid.problems:
            log(f"=> {problem}")
        raise StepFailed("BuildJobFailed", f"{unit.name}: {invalid.message}") from invalid
    for note in project.notes:
        log(f"=> note: {note}")
    refused = [f"{a.qualified_name} ({a.runtime})" for a in project.actions if a.language not in RUNNABLE]
    if refused:
        raise StepFailed("BuildJobFailed", f"{unit.name}: shoal runs Python and Node.js functions only; not "
                                           f"{', '.join(refused)}")
    if not project.actions:
        log("=> The project has no functions (nothing under packages/)")
    for action in project.actions:
        log(f"=> {action.qualified_name}: {action.runtime}, web: {action.web.value}, "
            f"timeout {action.limits.timeout_ms} ms, memory {action.limits.memory_mb} MB")
    return project


async def plan_project(ctx: BuildContext, unit: RunUnit, tools: Toolchains, python: str, log: Log) -> Recipe:
    """The recipe for the project in ``ctx.source``; ``python`` is the interpreter actions will run on
    (their virtualenvs are made with it)."""
    project = checked_project(ctx.source, unit, ctx.user_env, log)
    uv = await tools.find("uv", log=log) if ctx.fast_installer else None
    steps: list[Action] = []
    if (ctx.source / "lib").is_dir():
        steps += _directory_steps(ctx, "lib", "lib", python, uv.exe if uv else None, is_python=False)
    for action in project.actions:
        if action.is_directory:
            steps += _directory_steps(ctx, action.path, action.qualified_name, python, uv.exe if uv else None,
                                      is_python=action.language == "python")
    return Recipe((BUILDPACK,), tuple([uv] if uv else []), tuple(steps))


def _directory_steps(ctx: BuildContext, relative: str, name: str, python: str, uv: str | None,
                     is_python: bool) -> list[Action]:
    source, where = ctx.source / relative, ctx.app / PurePosixPath(relative)
    if (source / "build.sh").is_file():
        return [ctx.command(f"{name}: running build.sh", "/bin/sh", "build.sh", cwd=where)]
    if (source / "package.json").is_file():
        locked = (source / "package-lock.json").is_file() or (source / "npm-shrinkwrap.json").is_file()
        install = ("npm", "ci" if locked else "install", "--omit=dev")
        steps: list[Action] = [ctx.command(f"{name}: {' '.join(install)}", *install, cwd=where)]
        if "build" in _scripts(source / "package.json"):
            steps.append(ctx.command(f"{name}: npm run build", "npm", "run", "build", cwd=where))
        return steps
    if is_python and (source / "requirements.txt").is_file():
        venv = where / "virtualenv"
        if uv:
            return [ctx.command(f"{name}: creating its virtualenv with uv", uv, "venv", "--quiet", "--python",
                                python, str(venv), cwd=where),
                    ctx.command(f"{name}: uv pip install -r requirements.txt", uv, "pip", "install", "--python",
                                str(venv / "bin" / "python"), "-r", "requirements.txt", cwd=where)]
        return [ctx.command(f"{name}: creating its virtualenv", python, "-m", "venv", str(venv), cwd=where),
                ctx.command(f"{name}: pip install -r requirements.txt", str(venv / "bin" / "python"), "-m", "pip",
                            "install", "-r", "requirements.txt", cwd=where)]
    return []


def _scripts(package_json: Path) -> dict[str, Any]:
    try:
        data = json.loads(package_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    scripts = data.get("scripts") if isinstance(data, dict) else None
    return scripts if isinstance(scripts, dict) else {}
