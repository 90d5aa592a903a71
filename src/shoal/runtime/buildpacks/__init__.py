"""Buildpacks: detect an app's language, plan its build as typed steps, run them through an executor.

Used by both runtimes: the process runtime runs steps on the host (``HostExecutor``), the container
runtime inside a build container started from the stack image (its own ``Executor`` adapter; see
``executor.py`` for what an adapter must do). What each buildpack does follows DigitalOcean's buildpacks
(Heroku's classic buildpacks at the releases DigitalOcean names; ``shared/reference`` §1).

    detect(source, environment_slug, build_command) -> Detection        pure, over the source tree
    plan(detection, ctx, Toolchains(executor, provisioner), log) -> Recipe
    execute(recipe.steps, executor, log)                                 (build() = all three)
    process_command(kind, name, run_command, app_dir, recipe.processes)  what runs
    static_root(app_dir, output_dir, recipe.output_dir)                  what a static site serves
    catalogue() -> tuple[Buildpack, ...]                                 GET /v2/apps/buildpacks

Must not: fetch sources, cache or key builds, or start processes other than build steps.
"""

from shoal.runtime.buildpacks.catalogue import Buildpack, buildpack, catalogue
from shoal.runtime.buildpacks.detect import STATIC_DIRS, Detection, Language, detect
from shoal.runtime.buildpacks.executor import Executor, HostExecutor, Probed, execute
from shoal.runtime.buildpacks.plan import build, build_env, plan, process_command, static_root, suggested_run_command
from shoal.runtime.buildpacks.recipe import Action, BuildContext, Command, Recipe, Toolchain, WriteFile
from shoal.runtime.buildpacks.toolchains import Provisioner, Toolchains

__all__ = [
    "Action", "BuildContext", "Buildpack", "Command", "Detection", "Executor", "HostExecutor", "Language",
    "Probed", "Provisioner", "STATIC_DIRS", "Recipe", "Toolchain", "Toolchains", "WriteFile", "build", "build_env", "buildpack", "catalogue",
    "detect", "execute", "plan", "process_command", "static_root", "suggested_run_command",
]
