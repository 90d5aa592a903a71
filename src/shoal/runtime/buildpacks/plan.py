"""From a detection to a recipe, and from a recipe to a finished build.

Role: the package's entry points. ``plan`` asks the detected language's planner for its recipe, adds
the Node.js assets build where detection asked for it and the spec's ``build_command`` last (DigitalOcean
runs it after the buildpacks), and logs which buildpacks and toolchains the build uses. ``build`` is
detect → plan → execute for a runtime that has an executor. ``process_command`` and ``static_root``
say how the result runs.

Must not: copy sources, key or cache builds, or start the app; those are the runtime's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath

from shoal.runtime.buildpacks import golang, node, php, python, ruby, static
from shoal.runtime.buildpacks.catalogue import buildpack
from shoal.runtime.buildpacks.detect import DOTNET_PATTERNS, STATIC_DIRS, Detection, detect
from shoal.runtime.buildpacks.executor import Executor, execute
from shoal.runtime.buildpacks.recipe import BuildContext, Log, Recipe, with_path
from shoal.runtime.buildpacks.toolchains import Provisioner, Toolchains
from shoal.runtime.buildpacks.tree import Tree

_PROCFILE_LINE = {"service": "web", "worker": "worker"}
# Quiet, non-interactive tools; below the spec's build-time variables so an app can still override them.
TOOL_DEFAULTS = {
    "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PYTHONUNBUFFERED": "1",
    "npm_config_fund": "false", "npm_config_audit": "false", "npm_config_update_notifier": "false",
    "npm_config_progress": "false", "CI": "true",
}


def build_env(executor: Executor, user_env: dict[str, str]) -> dict[str, str]:
    """A build's base environment (``BuildContext.env``): the executor's, quiet-tool defaults, the spec's."""
    return {**executor.base_env(), **TOOL_DEFAULTS, **user_env}


async def plan(detection: Detection, ctx: BuildContext, tools: Toolchains, log: Log) -> Recipe:
    """The recipe for ``ctx``'s app as ``detection`` says it is."""
    if detection.unknown_slug:
        log(f"=> environment_slug {detection.unknown_slug!r} names no buildpack; detecting from the files instead")
    names = ", ".join(f"{buildpack(b).name} {buildpack(b).version}" for b in detection.buildpacks) or "none"
    log(f"=> Detected {detection.language} ({detection.reason}); buildpacks: {names}")
    recipe = await _language(detection, ctx, tools, log)
    if detection.assets:
        recipe = _merge(recipe, await node.plan(ctx, tools, log))
    for toolchain in recipe.toolchains:
        log(f"=> Using {toolchain.describe()}")
    recipe = replace(recipe, run_env={**recipe.run_env, "PATH": with_path(ctx.env, *recipe.run_path)["PATH"]})
    if ctx.build_command:
        env = {**ctx.env, **recipe.run_env}
        recipe = replace(recipe, steps=(*recipe.steps, ctx.command(
            f"Running {ctx.build_command}", "/bin/sh", "-c", ctx.build_command, env=env)))
    return recipe


async def _language(detection: Detection, ctx: BuildContext, tools: Toolchains, log: Log) -> Recipe:
    language = detection.language
    if language == "python":
        return await python.plan(ctx, tools, log)
    if language in ("node", "gatsby", "hexo"):
        generator = None if language == "node" else language
        return await node.plan(ctx, tools, log, output_dir="public" if generator else None, generator=generator)
    if language == "go":
        return await golang.plan(ctx, tools, log)
    if language == "php":
        return await php.plan(ctx, tools, log)
    if language == "ruby":
        return await ruby.plan(ctx, tools, log)
    if language == "hugo":
        return await static.hugo(ctx, tools, log)
    if language == "jekyll":
        return await static.jekyll(ctx, tools, log)
    if language == "html":
        return static.html(log)
    if language == "dotnet":
        tree = Tree(ctx.source)
        project = next((n for p in DOTNET_PATTERNS for n in tree.glob(p)), "the project")
        return await static.dotnet(ctx, tools, log, project)
    log("=> No buildpack detected: running only the spec's build_command" if ctx.build_command
        else "=> No buildpack detected and no build_command: the tree is used as committed")
    return Recipe((), (), ())


def _merge(first: Recipe, assets: Recipe) -> Recipe:
    """``first`` followed by the Node.js assets build; both tools stay on the run's ``PATH``."""
    return replace(first, buildpacks=(*first.buildpacks, *assets.buildpacks),
                   toolchains=(*first.toolchains, *assets.toolchains), steps=(*first.steps, *assets.steps),
                   run_path=(*first.run_path, *assets.run_path))


async def build(ctx: BuildContext, executor: Executor, provisioner: Provisioner | None, log: Log) -> Recipe:
    """Detect, plan and carry out the build of ``ctx``'s app with ``executor``; the recipe it followed."""
    detection = detect(ctx.source, ctx.environment_slug, ctx.build_command)
    recipe = await plan(detection, ctx, Toolchains(executor, provisioner), log)
    await execute(recipe.steps, executor, log)
    return recipe


def process_command(kind: str, name: str, run_command: str | None, app_dir: Path,
                    processes: dict[str, str]) -> str | None:
    """What a component's processes run: ``run_command``; else its Procfile line (``web`` for services,
    ``worker`` for workers, the one named like a job); else the buildpack's default for that line."""
    if run_command:
        return run_command
    if kind in ("static_site", "function"):
        return None
    line = _PROCFILE_LINE.get(kind) or (name if kind == "job" else "")
    if not line:
        return None
    return Tree(app_dir).procfile().get(line) or processes.get(line)


def static_root(app_dir: Path, output_dir: str | None, default: str | None = None) -> Path | None:
    """Where a static site's files are: ``output_dir`` if given, else the generator's output dir, else the
    first of DigitalOcean's default dirs that exists, else ``app_dir`` itself when it holds an
    ``index.html``. ``None`` for a path that climbs out of ``app_dir``."""
    if output_dir:
        relative = PurePosixPath(output_dir.strip("/") or ".")
        return None if ".." in relative.parts else app_dir / relative
    for name in ((default,) if default else ()) + STATIC_DIRS:
        if (app_dir / name).is_dir():
            return app_dir / name
    return app_dir if (app_dir / "index.html").is_file() else None


def suggested_run_command(detection: Detection, app_dir: Path) -> str | None:
    """What a service built as ``detection`` says runs it, without building: its Procfile's ``web`` line,
    else the buildpack's default where that needs no build to know (Python, Node.js, PHP, Ruby). Go's
    default names the binaries the build makes, so it is not guessed here."""
    tree = Tree(app_dir)
    procfile = tree.procfile().get("web")
    if procfile:
        return procfile
    language = detection.language
    defaults: Mapping[str, str]
    if language == "python":
        defaults = python.default_processes(tree)
    elif language == "node":
        defaults = node.default_processes(tree)
    elif language == "php":
        defaults = php.DEFAULT_PROCESSES
    elif language == "ruby":
        defaults = ruby.default_processes(tree, ruby.rails_major(tree))
    else:
        defaults = {}
    return defaults.get("web")
