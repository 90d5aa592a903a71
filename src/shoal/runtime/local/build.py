"""The local builder: turns an exported commit into a runnable tree, buildpack style, without containers.

Role: for one component, copy the checkout into ``root/<app_id>/<component>/<build key>/app``,
install its dependencies the way DigitalOcean's buildpacks would (Python: a venv and pip; Node:
npm), run the spec's ``build_command``, and say how the result runs. Every line the tools print
goes to ``log`` and becomes a BUILD log line.

Builds are keyed by everything that changes their output (commit, ``source_dir``,
``build_command``, ``environment_slug``, ``dockerfile_path``, the build-time variables, the
stack), so redeploying unchanged inputs reuses the finished tree at once. A build is finished
only once its marker file exists — written last — so one cut short by a crash is redone.

Must not: start the app, touch the ingress, or pretend to do Docker builds (there is no
container engine on the machine; ``dockerfile_path`` and ``image`` sources fail clearly).
Not supported (reported in the build log rather than guessed at): Python versions other than the
one shoal runs on, yarn/pnpm lockfiles (npm is used), Pipfile ``git``/``path`` entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from shoal.domain.deployments import StepFailed
from shoal.domain.plan import BuildPlan, BuildStrategy, Kind, RunUnit
from shoal.runtime.local.detect import Stack, detect, package_scripts, run_command, slug_stack, static_root
from shoal.runtime.local.functions import build_actions

Log = Callable[[str], None]

MARKER = ".shoal-build.json"
KEEP_BUILDS = 3
# Only these reach a build from shoal's own environment; everything else comes from the app spec.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "SSL_CERT_FILE", "SSL_CERT_DIR")
# Quiet, non-interactive tools; placed below build_env so an app can still override them.
_TOOL_DEFAULTS = {
    "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PYTHONUNBUFFERED": "1",
    "npm_config_fund": "false", "npm_config_audit": "false", "npm_config_update_notifier": "false",
    "npm_config_progress": "false", "CI": "true",
}
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_CHUNK = 65536


@dataclass(frozen=True)
class BuildResult:
    """A finished build.

    ``env`` holds what the runtime adds to a process's environment (``PATH`` with the venv or
    ``node_modules/.bin`` first, ``VIRTUAL_ENV``, ``NODE_ENV=production``); the component's own
    run-time variables go on top, as on DigitalOcean, so a user who sets ``NODE_ENV`` wins.
    """

    app_dir: Path
    run_command: str | None
    env: dict[str, str]
    static_root: Path | None
    reused: bool
    stack: str
    build_dir: Path  # the artefact: the tree this build made (``app_dir`` is inside it)


class Builder:
    """Builds components under ``root``, keeping the last few builds of each for reuse and rollback.

    ``in_use`` names the ``app_dir``s of builds something still runs; pruning never removes those
    (after two failed deployments the version still serving may be older than the last three builds).
    """

    def __init__(self, root: Path, in_use: Callable[[], Iterable[Path]] = tuple) -> None:
        self._root = root
        self._in_use = in_use
        # Builds of one component are serialised, so pruning never removes a build in progress.
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def build(self, *, app_id: str, unit: RunUnit, commit: str, checkout: Path, build_env: dict[str, str],
                    force: bool, log: Log) -> BuildResult:
        _refuse_containers(unit)
        component, plan = unit.name, unit.build
        source_dir = _source_dir(plan)
        if not (checkout / source_dir).is_dir():
            raise StepFailed("BuildJobFailed", f"source_dir {plan.source_dir!r} of {component} does not exist "
                                               f"in commit {commit[:7]}")
        stack: Stack = "functions" if unit.kind == Kind.FUNCTION else _stack(checkout / source_dir, plan, log)
        key = build_key(commit=commit, build=plan, build_env=build_env, stack=stack)
        home = self._root / _safe(app_id) / _safe(component)
        lock = self._locks.setdefault((app_id, component), asyncio.Lock())
        async with lock:
            build_dir = home / key
            if not force and (build_dir / MARKER).is_file():
                result = _reused(build_dir, unit)
                log(f"PreviousBuildReused: reusing the build of commit {commit[:7]} (build {key}); "
                    "nothing changed since it was made")
                return result
            log(f"=> Building {component} ({stack}) from commit {commit[:7]}" + (" (forced rebuild)" if force else ""))
            await asyncio.to_thread(_copy_checkout, checkout, build_dir / "app")
            app_dir = build_dir / "app" / source_dir
            env, run_env = _environments(stack, build_dir, app_dir, build_env)
            if stack == "functions":
                await build_actions(app_dir, unit, env, build_env, log, _run)
            else:
                await _build_stack(stack, build_dir, app_dir, env, plan.build_command or "", log)
            if plan.build_command:
                await _run(["/bin/sh", "-c", plan.build_command], app_dir, env, log, plan.build_command)
            root = _checked_static_root(unit, app_dir)
            await asyncio.to_thread(_write_marker, build_dir, {"stack": stack, "env": run_env, "commit": commit})
            await asyncio.to_thread(_prune, home, build_dir, frozenset(self._in_use()))
            log("=> Build complete")
            return BuildResult(app_dir, run_command(unit, app_dir, stack), run_env, root, False, stack, build_dir)

    def load(self, build_dir: Path, unit: RunUnit) -> BuildResult | None:
        """A finished build again, from the artefact a deployment recorded (``None`` if it is gone)."""
        if not build_dir.is_relative_to(self._root) or not (build_dir / MARKER).is_file():
            return None
        return _reused(build_dir, unit)


def build_key(*, commit: str, build: BuildPlan, build_env: Mapping[str, str], stack: str) -> str:
    """A short hash of every input that changes what a build produces."""
    material = {
        "commit": commit, "stack": stack, "env": sorted(build_env.items()),
        "source_dir": "" if build.source_dir == "." else build.source_dir, "build_command": build.build_command or "",
        "environment_slug": build.environment_slug or "", "dockerfile_path": build.dockerfile_path or "",
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def _refuse_containers(unit: RunUnit) -> None:
    if unit.build.strategy == BuildStrategy.DOCKERFILE:
        raise StepFailed("BuildJobFailed", f"{unit.name} is built from {unit.build.dockerfile_path}: a Dockerfile "
                         "build needs a container engine, and the local runtime builds with buildpacks only; remove "
                         "dockerfile_path or use the container runtime (shoal serve --runtime container)")
    if unit.build.strategy == BuildStrategy.IMAGE:
        raise StepFailed("BuildJobFailed", f"{unit.name} deploys a container image: running an image needs a "
                         "container engine; use a git source or the container runtime (shoal serve --runtime "
                         "container)")


def _source_dir(build: BuildPlan) -> PurePosixPath:
    # The plan has it relative to the repository root already ("." for the root).
    if build.leaves_repository:
        raise StepFailed("BuildJobFailed", f"source_dir {build.source_dir!r} leaves the repository")
    return PurePosixPath(build.source_dir)


def _safe(name: str) -> str:
    # App ids and component names become directory names; the spec validator already limits them.
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not usable as a directory name: {name!r}")
    return name


def _stack(app_dir: Path, build: BuildPlan, log: Log) -> Stack:
    slug = build.environment_slug
    if slug and slug_stack(slug) is None:
        log(f"=> environment_slug {slug!r} has no local builder; detecting the stack from the files instead")
    return detect(app_dir, slug, build.build_command)


def _reused(build_dir: Path, unit: RunUnit) -> BuildResult:
    marker = build_dir / MARKER
    data: Any = json.loads(marker.read_text(encoding="utf-8"))
    marker.touch()  # a reused build counts as recent, so pruning keeps what is running
    stack: Stack = data["stack"]
    app_dir = build_dir / "app" / _source_dir(unit.build)
    root = _checked_static_root(unit, app_dir)
    env = {str(k): str(v) for k, v in data["env"].items()}
    return BuildResult(app_dir, run_command(unit, app_dir, stack), env, root, True, stack, build_dir)


def _copy_checkout(checkout: Path, dest: Path) -> None:
    # Whole repository, not just source_dir: monorepo apps often read ../shared at build time.
    if dest.parent.exists():
        shutil.rmtree(dest.parent)  # a half-finished or forced build starts from nothing
    dest.parent.mkdir(parents=True)
    shutil.copytree(checkout, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))


def _environments(stack: Stack, build_dir: Path, app_dir: Path,
                  build_env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(the build's environment, what the runtime must add at run time)."""
    base = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    base.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env = {**base, **_TOOL_DEFAULTS, **build_env}
    run: dict[str, str] = {}
    if stack == "python":
        venv = build_dir / ".venv"
        run = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{base['PATH']}", "PYTHONUNBUFFERED": "1"}
        env.update({"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{env['PATH']}"})
    elif stack == "node":
        run = {"PATH": f"{app_dir / 'node_modules' / '.bin'}:{base['PATH']}", "NODE_ENV": "production"}
    return env, run


async def _build_stack(stack: Stack, build_dir: Path, app_dir: Path, env: dict[str, str],
                       build_command: str, log: Log) -> None:
    if stack == "python":
        await _build_python(build_dir / ".venv", app_dir, env, log)
    elif stack == "node":
        await _build_node(app_dir, env, build_command, log)
    elif stack == "static":
        log("=> Static site: nothing to install")
    else:
        log("=> No buildpack detected: running only the spec's build_command" if build_command
            else "=> No buildpack detected and no build_command: the tree is used as committed")


async def _build_python(venv: Path, app_dir: Path, env: dict[str, str], log: Log) -> None:
    # The venv uses the interpreter shoal runs on; runtime.txt / .python-version are not honoured.
    await _run([sys.executable, "-m", "venv", str(venv)], app_dir, env, log, "python3 -m venv .venv")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install"]
    if (app_dir / "requirements.txt").is_file():
        await _run([*pip, "-r", "requirements.txt"], app_dir, env, log, "pip install -r requirements.txt")
    elif _installable_pyproject(app_dir):
        await _run([*pip, "."], app_dir, env, log, "pip install .")
    elif (app_dir / "Pipfile").is_file():
        wanted = _pipfile_requirements(app_dir, log)
        if wanted:
            await _run([*pip, *wanted], app_dir, env, log, "pip install (from Pipfile)")
    else:
        log("=> No requirements.txt, installable pyproject.toml or Pipfile: nothing to install")


def _installable_pyproject(app_dir: Path) -> bool:
    # A pyproject.toml holding only tool settings (black, ruff) is not a package; pip would fail.
    try:
        data = tomllib.loads((app_dir / "pyproject.toml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True  # let pip report what is wrong with it
    return "project" in data or "build-system" in data


def _pipfile_requirements(app_dir: Path, log: Log) -> list[str]:
    """Pip requirement strings from Pipfile.lock (pinned) or else Pipfile, without needing pipenv."""
    try:
        if (app_dir / "Pipfile.lock").is_file():
            locked: Any = json.loads((app_dir / "Pipfile.lock").read_text(encoding="utf-8")).get("default", {})
            entries = {name: (entry.get("version", "") if isinstance(entry, dict) else "")
                       for name, entry in locked.items()}
        else:
            entries = tomllib.loads((app_dir / "Pipfile").read_text(encoding="utf-8")).get("packages", {})
    except (OSError, ValueError) as exc:
        raise StepFailed("BuildJobFailed", f"could not read Pipfile/Pipfile.lock: {exc}") from exc
    wanted: list[str] = []
    for name, entry in entries.items():
        if isinstance(entry, dict):
            if "version" not in entry:
                log(f"=> Skipping Pipfile entry {name!r}: only version requirements are supported without pipenv")
                continue
            extras = f"[{','.join(entry.get('extras', []))}]" if entry.get("extras") else ""
            name, entry = name + extras, entry["version"]
        version = str(entry).strip()
        wanted.append(name if version in ("", "*") else name + version)
    return wanted


async def _build_node(app_dir: Path, env: dict[str, str], build_command: str, log: Log) -> None:
    locked = (app_dir / "package-lock.json").is_file() or (app_dir / "npm-shrinkwrap.json").is_file()
    install = ["npm", "ci"] if locked else ["npm", "install"]
    await _run(install, app_dir, env, log, " ".join(install))
    # A build_command of "npm run build" would run the script twice; it runs once, after this.
    if "build" in package_scripts(app_dir) and build_command.strip() != "npm run build":
        await _run(["npm", "run", "build"], app_dir, env, log, "npm run build")


def _checked_static_root(unit: RunUnit, app_dir: Path) -> Path | None:
    if unit.static is None:
        return None
    output_dir, component = unit.build.output_dir, unit.name
    root = static_root(app_dir, output_dir)
    if root is None or not root.is_dir():
        wanted = (f"output_dir {output_dir!r}" if output_dir
                  else "none of _static, dist, public, build (nor an index.html)")
        raise StepFailed("BuildJobFailed", f"static site {component} has no files to serve: {wanted} was found "
                         "after the build")
    return root


async def _run(argv: list[str], cwd: Path, env: Mapping[str, str], log: Log, shown: str) -> None:
    """Run one build command, streaming its output to ``log``; non-zero exit → BuildJobExitNonZero."""
    log(f"=> Running {shown}")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=dict(env), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except FileNotFoundError as exc:
        raise StepFailed("BuildJobFailed", f"{argv[0]} is not installed on this machine; it is needed to run "
                                           f"{shown}") from exc
    try:
        assert proc.stdout is not None
        await _pump(proc.stdout, log)
        code = await proc.wait()
    except asyncio.CancelledError:
        # Its own session, so the whole tree (npm → node → ...) goes, not just the first process.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    if code != 0:
        raise StepFailed("BuildJobExitNonZero", f"{shown} exited with status {code}")


async def _pump(stream: asyncio.StreamReader, log: Log) -> None:
    # Read in chunks rather than readline(): a progress bar without newlines must not hit the
    # stream's line-length limit, and "\r" redraws become separate lines.
    pending = b""
    while chunk := await stream.read(_CHUNK):
        *lines, pending = _LINE_BREAK.split(pending + chunk)
        if len(pending) > _CHUNK:
            lines, pending = [*lines, pending], b""
        for line in lines:
            if line.strip():
                log(line.decode(errors="replace").rstrip())
    if pending.strip():
        log(pending.decode(errors="replace").rstrip())


def _write_marker(build_dir: Path, data: dict[str, Any]) -> None:
    partial = build_dir / (MARKER + ".partial")
    partial.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(partial, build_dir / MARKER)  # atomic: a marker is either whole or absent


def _prune(home: Path, current: Path, in_use: frozenset[Path]) -> None:
    """Keep ``current`` and the newest finished builds (``KEEP_BUILDS`` in all) and any build in
    use; drop the rest."""
    busy = {home / path.relative_to(home).parts[0] for path in in_use if path.is_relative_to(home)}
    others = [d for d in home.iterdir() if d.is_dir() and d != current and d not in busy]
    finished = sorted((d for d in others if (d / MARKER).is_file()),
                      key=lambda d: (d / MARKER).stat().st_mtime, reverse=True)
    keep = set(finished[:KEEP_BUILDS - 1])
    for stale in others:
        if stale not in keep:
            shutil.rmtree(stale, ignore_errors=True)
