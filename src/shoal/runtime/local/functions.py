"""Functions components in the local runtime: building a project's actions, and the gateway that serves them.

Build (called by the ``Builder`` for a ``functions`` unit, in its build area, after the checkout is
copied): the project is read and checked (``shoal.domain.functions.project``; every problem with its
file and path fails the build), each ``${VAR}`` must be one of the component's variables, and each
action's dependencies are installed the way DigitalOcean's deployer does it (reference §3.1): a
top-level ``lib/`` first, then per directory action its ``build.sh``; else ``package.json`` (``npm
ci``/``npm install`` without dev dependencies, then ``npm run build`` when there is such a script);
else ``requirements.txt`` (a ``virtualenv`` directory inside the action, which the Python worker puts
on its path — ``uv`` when installed, else ``venv`` and pip). Only Python and Node.js actions run here;
other runtimes fail the build with a clear message.

Run: ``gateway_spec`` reads the project again with the variables' real values and describes the one
gateway process (``shoal.runtime.functions.gateway``) that the supervisor keeps running on the
component's port.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from shoal.domain.deployments import StepFailed
from shoal.domain.functions.project import PROJECT_FILE, Project, ProjectInvalid, read_project
from shoal.domain.plan import Probe, RunUnit
from shoal.runtime.functions.gateway import CONFIG_VARIABLE, GatewayConfig

Log = Callable[[str], None]
Runner = Callable[[list[str], Path, Mapping[str, str], Log, str], Awaitable[None]]

RUNNABLE = ("python", "nodejs")
_SKIPPED_DIRS = frozenset({".git", "node_modules", "virtualenv", "__pycache__", ".venv"})
_GATEWAY_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")


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


def _checked(root: Path, unit: RunUnit, build_env: Mapping[str, str], log: Log) -> Project:
    # Values are not known at build time (bindables resolve at deploy), only which variables exist.
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
        raise StepFailed("BuildJobFailed", f"{unit.name}: shoal's local runtime runs Python and Node.js functions "
                                           f"only; not {', '.join(refused)}")
    if not project.actions:
        log("=> The project has no functions (nothing under packages/)")
    return project


async def build_actions(root: Path, unit: RunUnit, env: Mapping[str, str], build_env: Mapping[str, str], log: Log,
                        run: Runner) -> Project:
    """Check the project at ``root`` and install every action's dependencies in place."""
    project = _checked(root, unit, build_env, log)
    if (root / "lib").is_dir():
        await _build_directory(root / "lib", "lib", env, log, run, python=False)
    for action in project.actions:
        if action.is_directory:
            await _build_directory(root / action.path, action.qualified_name, env, log, run,
                                   python=action.language == "python")
    for action in project.actions:
        log(f"=> {action.qualified_name}: {action.runtime}, {'web: ' + action.web.value}, "
            f"timeout {action.limits.timeout_ms} ms, memory {action.limits.memory_mb} MB")
    return project


async def _build_directory(where: Path, name: str, env: Mapping[str, str], log: Log, run: Runner,
                           python: bool) -> None:
    if (where / "build.sh").is_file():
        await run(["/bin/sh", "build.sh"], where, env, log, f"{name}: build.sh")
    elif (where / "package.json").is_file():
        locked = (where / "package-lock.json").is_file() or (where / "npm-shrinkwrap.json").is_file()
        install = ["npm", "ci" if locked else "install", "--omit=dev"]
        await run(install, where, env, log, f"{name}: {' '.join(install)}")
        if '"build"' in (where / "package.json").read_text(encoding="utf-8", errors="replace"):
            await run(["npm", "run", "build", "--if-present"], where, env, log, f"{name}: npm run build")
    elif python and (where / "requirements.txt").is_file():
        await _python_requirements(where, name, env, log, run)


async def _python_requirements(where: Path, name: str, env: Mapping[str, str], log: Log, run: Runner) -> None:
    venv = where / "virtualenv"
    uv = shutil.which("uv", path=env.get("PATH"))
    if uv:
        await run([uv, "venv", "--quiet", "--python", base_python(), str(venv)], where, env, log, f"{name}: uv venv")
        await run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), "-r", "requirements.txt"], where,
                  env, log, f"{name}: uv pip install -r requirements.txt")
        return
    await run([base_python(), "-m", "venv", str(venv)], where, env, log, f"{name}: python3 -m venv virtualenv")
    await run([str(venv / "bin" / "python"), "-m", "pip", "install", "-r", "requirements.txt"], where, env, log,
              f"{name}: pip install -r requirements.txt")


def base_python() -> str:
    """The interpreter shoal runs on, outside shoal's own virtualenv: what actions run with."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def gateway_command() -> str:
    return f"exec {shlex.quote(sys.executable)} -m shoal.runtime.functions.gateway"


def gateway_env(root: Path, unit: RunUnit, env: Mapping[str, str], port: int, *, default_cors: bool,
                namespace: str, api_host: str, host_env: Mapping[str, str]) -> dict[str, str]:
    """The gateway's whole environment: its configuration, and only what a tool needs from the host."""
    try:
        project = load_project(root, env)
    except ProjectInvalid as invalid:
        raise StepFailed("ContainerCommandNotExecutable", f"{unit.name}: {invalid.message}") from invalid
    config = GatewayConfig(port=port, root=root, actions=project.actions, namespace=namespace, api_host=api_host,
                           default_cors=default_cors, python=base_python(),
                           node=shutil.which("node", path=host_env.get("PATH")) or "node")
    return {**{k: host_env[k] for k in _GATEWAY_ENV if k in host_env}, CONFIG_VARIABLE: config.to_json()}


def gateway_probe(port: int) -> Probe:
    """A TCP check: the gateway answers within a second or two; a loaded machine gets two minutes."""
    return Probe(port=port, period_seconds=0.5, timeout_seconds=1.0, failure_threshold=240)
