"""The local builder: turns an exported commit into a runnable tree, buildpack style, without containers.

Role: for one component, copy the checkout into ``root/<app_id>/<component>/<build key>/app``, build it
with the buildpacks (``shoal.runtime.buildpacks``: detection in DigitalOcean's order, a recipe of typed
steps, run here by the host executor with the host's toolchains or ones shoal provisions into
``toolchains/``), and say how the result runs. Every line the tools print goes to ``log`` and becomes a
BUILD log line. What a buildpack adds outside the app (a virtualenv, launch scripts) goes in the build's
``layers/``; caches that outlive one build (Go's, npm's, corepack's) in ``cache/<app>/<component>``.

Builds are keyed by everything that changes their output (commit, ``source_dir``,
``build_command``, ``environment_slug``, ``dockerfile_path``, the build-time variables, the
detected language), so redeploying unchanged inputs reuses the finished tree at once. A build is
finished only once its marker file exists — written last — so one cut short by a crash is redone.

Must not: start the app, touch the ingress, or pretend to do Docker builds (``dockerfile_path`` and
``image`` sources fail clearly: they are the container runtime's).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from shoal.domain.deployments import StepFailed
from shoal.domain.plan import BuildPlan, BuildStrategy, Kind, RunUnit
from shoal.runtime import buildpacks
from shoal.runtime.buildpacks import BuildContext, Executor, HostExecutor, Provisioner, Recipe, Toolchains
from shoal.runtime.functions.build import plan_project
from shoal.runtime.local.functions import base_python

Log = Callable[[str], None]

MARKER = ".shoal-build.json"
KEEP_BUILDS = 3
BUILDER_VERSION = 2  # part of the build key: builds made before the buildpacks package are redone


@dataclass(frozen=True)
class BuildResult:
    """A finished build.

    ``env`` holds what the runtime adds to a process's environment (``PATH`` with the buildpacks'
    directories first, ``VIRTUAL_ENV``, ``NODE_ENV=production`` ...); the component's own run-time
    variables go on top, as on DigitalOcean, so a user who sets ``NODE_ENV`` wins. ``stack`` is the
    detected language; ``buildpacks`` the catalogue ids that built it.
    """

    app_dir: Path
    run_command: str | None
    env: dict[str, str]
    static_root: Path | None
    reused: bool
    stack: str
    build_dir: Path  # the artefact: the tree this build made (``app_dir`` is inside it)
    buildpacks: tuple[str, ...] = ()


class Builder:
    """Builds components under ``root``, keeping the last few builds of each for reuse and rollback.

    ``in_use`` names the ``app_dir``s of builds something still runs; pruning never removes those
    (after two failed deployments the version still serving may be older than the last three builds).
    """

    def __init__(self, root: Path, in_use: Callable[[], Iterable[Path]] = tuple, *,
                 executor: Executor | None = None, provisioner: Provisioner | None = None) -> None:
        self._root = root
        self._in_use = in_use
        self._executor = executor or HostExecutor()
        self._provisioner = provisioner or Provisioner(root.parent / "toolchains")
        self._cache = root.parent / "cache" / "build"
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
        functions = unit.kind == Kind.FUNCTION  # a Functions project, not an app for the buildpacks
        detection = None if functions else buildpacks.detect(checkout / source_dir, plan.environment_slug,
                                                              plan.build_command)
        stack = detection.language if detection is not None else "functions"
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
            ctx = self._context(unit, app_dir, build_dir, self._cache / _safe(app_id) / _safe(component), build_env)
            tools = Toolchains(self._executor, self._provisioner)
            recipe: Recipe = (await plan_project(ctx, unit, tools, base_python(), log) if detection is None
                              else await buildpacks.plan(detection, ctx, tools, log))
            await buildpacks.execute(recipe.steps, self._executor, log)
            root = _checked_static_root(unit, app_dir, recipe.output_dir)
            await asyncio.to_thread(_write_marker, build_dir, {
                "stack": stack, "env": dict(recipe.run_env), "commit": commit, "processes": dict(recipe.processes),
                "output_dir": recipe.output_dir, "buildpacks": list(recipe.buildpacks)})
            await asyncio.to_thread(_prune, home, build_dir, frozenset(self._in_use()))
            log("=> Build complete")
            return BuildResult(app_dir, _run_command(unit, app_dir, recipe.processes), dict(recipe.run_env), root,
                               False, stack, build_dir, recipe.buildpacks)

    def _context(self, unit: RunUnit, app_dir: Path, build_dir: Path, cache: Path,
                 build_env: dict[str, str]) -> BuildContext:
        return BuildContext(
            source=app_dir, app=PurePosixPath(app_dir), layers=PurePosixPath(build_dir / "layers"),
            cache=PurePosixPath(cache), kind=str(unit.kind), env=buildpacks.build_env(self._executor, build_env),
            user_env=build_env, build_command=unit.build.build_command, environment_slug=unit.build.environment_slug)

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
        "builder": BUILDER_VERSION,
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


def _reused(build_dir: Path, unit: RunUnit) -> BuildResult:
    marker = build_dir / MARKER
    data: Any = json.loads(marker.read_text(encoding="utf-8"))
    marker.touch()  # a reused build counts as recent, so pruning keeps what is running
    app_dir = build_dir / "app" / _source_dir(unit.build)
    root = _checked_static_root(unit, app_dir, data.get("output_dir"))
    env = {str(k): str(v) for k, v in data["env"].items()}
    processes = {str(k): str(v) for k, v in (data.get("processes") or {}).items()}
    return BuildResult(app_dir, _run_command(unit, app_dir, processes), env, root, True, str(data["stack"]),
                       build_dir, tuple(data.get("buildpacks") or ()))


def _run_command(unit: RunUnit, app_dir: Path, processes: Mapping[str, str]) -> str | None:
    return buildpacks.process_command(str(unit.kind), unit.name, unit.run_command, app_dir, dict(processes))


def _copy_checkout(checkout: Path, dest: Path) -> None:
    # Whole repository, not just source_dir: monorepo apps often read ../shared at build time.
    if dest.parent.exists():
        shutil.rmtree(dest.parent)  # a half-finished or forced build starts from nothing
    dest.parent.mkdir(parents=True)
    shutil.copytree(checkout, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))


def _checked_static_root(unit: RunUnit, app_dir: Path, generated: str | None) -> Path | None:
    if unit.static is None:
        return None
    output_dir, component = unit.build.output_dir, unit.name
    root = buildpacks.static_root(app_dir, output_dir, generated)
    if root is None or not root.is_dir():
        wanted = (f"output_dir {output_dir!r} was not found" if output_dir
                  else "none of " + ", ".join(dict.fromkeys(filter(None, (generated, *buildpacks.STATIC_DIRS))))
                  + " (nor an index.html) was found")
        raise StepFailed("BuildJobFailed", f"static site {component} has no files to serve: {wanted} after the "
                         "build")
    return root


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
