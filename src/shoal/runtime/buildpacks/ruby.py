"""The Ruby buildpack: ``bundle install`` in deployment mode, Rails assets, default processes.

As heroku-buildpack-ruby v333 (reference §1.9): ``Gemfile`` and ``Gemfile.lock`` required; ``bundle
install -j4`` with ``BUNDLE_WITHOUT=development:test`` (the app's value wins, spaces become colons),
``BUNDLE_PATH=vendor/bundle``, ``BUNDLE_DEPLOYMENT=1`` (gems in ``vendor/cache`` are used first); Rails
(``railties`` ≥ 4 in the lock) runs ``rake assets:precompile`` with ``RAILS_ENV=production`` unless
``public/assets`` already has a Sprockets manifest, then ``assets:clean`` when defined. Default processes:
Rails ``bin/rails server -p ${PORT:-5000} -e $RAILS_ENV``; a ``config.ru`` ``bundle exec rackup config.ru -p
${PORT:-5000}``. Run-time defaults ``RACK_ENV``/``RAILS_ENV=production``, ``RAILS_SERVE_STATIC_FILES``,
``RAILS_LOG_TO_STDOUT``, ``SECRET_KEY_BASE`` (random, kept with the build), ``PUMA_PERSISTENT_TIMEOUT=95``.

Ruby and Bundler come from the stack image or the host (Debian packages); there is no archive shoal can
provision Ruby from, so a Gemfile asking for another Ruby fails, naming the version asked and the one
found. Where rubygems.org is unreachable, gems must be vendored (``vendor/cache``) or already installed on
the machine: when ``bundle check`` finds every locked gem installed there (Debian's ``ruby-*`` packages),
the build uses them instead of installing into ``vendor/bundle``, and says so.
"""

from __future__ import annotations

import re
import secrets

from packaging.version import Version

from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks.recipe import Action, BuildContext, Log, Recipe, Toolchain
from shoal.runtime.buildpacks.toolchains import Toolchains, sort_key
from shoal.runtime.buildpacks.tree import Tree

_GEMFILE_RUBY = re.compile(r"""^\s*ruby\s*\(?\s*['"]([^'"]+)['"]""", re.MULTILINE)
_LOCK_RUBY = re.compile(r"RUBY VERSION\s+ruby (\d+\.\d+\.\d+)")
_RAILTIES = re.compile(r"^\s{4}railties \((\d+)[.\d]*\)", re.MULTILINE)
_REQUIREMENT = re.compile(r"^\s*(~>|>=|<=|!=|>|<|=)?\s*(\d+(?:\.\d+)*)\s*$")


def ruby_wanted(tree: Tree) -> tuple[str | None, str]:
    """The Ruby the app asks for (a Gem requirement such as ``3.1.2`` or ``~> 3.1``) and where it says so."""
    found = _GEMFILE_RUBY.search(tree.text("Gemfile"))
    if found:
        return found.group(1).strip(), "Gemfile"
    locked = _LOCK_RUBY.search(tree.text("Gemfile.lock"))
    return (locked.group(1), "Gemfile.lock") if locked else (None, "")


def satisfies(version: str, requirement: str) -> bool:
    """Whether ``version`` meets a RubyGems requirement (comma-separated clauses, each ``[op] version``)."""
    for clause in requirement.split(","):
        match = _REQUIREMENT.match(clause)
        if match is None:
            raise ValueError(f"not a version requirement: {clause!r}")
        op, wanted = match.group(1) or "=", match.group(2)
        have, want = sort_key(version), Version(wanted)
        if op == "~>":
            parts = [int(p) for p in wanted.split(".")]
            ceiling = Version(".".join(map(str, [*parts[:-2], parts[-2] + 1]))) if len(parts) > 1 else None
            ok = have >= want and (ceiling is None or have < ceiling)
        else:
            ok = {"=": have == want, "!=": have != want, ">": have > want, "<": have < want,
                  ">=": have >= want, "<=": have <= want}[op]
        if not ok:
            return False
    return True


def rails_major(tree: Tree) -> int | None:
    found = _RAILTIES.search(tree.text("Gemfile.lock"))
    return int(found.group(1)) if found else None


async def find_ruby(tools: Toolchains, tree: Tree) -> Toolchain:
    wanted, source = ruby_wanted(tree)
    ruby = await tools.present("ruby")
    if ruby is None:
        asked = f"{source} asks for Ruby {wanted}; " if wanted else ""
        raise StepFailed("BuildJobFailed", f"Ruby app (Gemfile found): {asked}Ruby is not installed on this machine "
                                           "(Debian package ruby); it cannot be provisioned")
    try:
        ok = wanted is None or satisfies(ruby.version, wanted)
    except ValueError as exc:
        raise StepFailed("BuildJobFailed", f"{source} ruby {wanted!r}: {exc}") from exc
    if not ok:
        raise StepFailed("BuildJobFailed", f"{source} asks for Ruby {wanted}, and this machine has Ruby "
                                           f"{ruby.version} ({ruby.origin}); shoal cannot provision another Ruby. "
                                           f"Change {source} or install Ruby {wanted}")
    return ruby


def bundle_env(ctx: BuildContext, system_gems: bool) -> dict[str, str]:
    """Bundler's settings for the build and the run (the same, so ``bundle exec`` finds the gems)."""
    without = ctx.user_env.get("BUNDLE_WITHOUT", "development:test").replace(" ", ":")
    env = {"BUNDLE_WITHOUT": without, "BUNDLE_FROZEN": "1", "BUNDLE_GEMFILE": str(ctx.app / "Gemfile"),
           "BUNDLE_BIN": "", "BUNDLE_JOBS": "4"}
    if not system_gems:
        env.update({"BUNDLE_PATH": str(ctx.app / "vendor" / "bundle"), "BUNDLE_DEPLOYMENT": "1"})
    return {k: v for k, v in env.items() if v}


async def install_steps(ctx: BuildContext, tools: Toolchains, log: Log) -> tuple[list[Action], dict[str, str],
                                                                                  list[Toolchain]]:
    """Bundler's part of a Ruby build (also used by Jekyll): steps, the env after it, the toolchains."""
    tree = Tree(ctx.source)
    if not tree.has("Gemfile.lock"):
        raise StepFailed("BuildJobFailed", "Gemfile found without Gemfile.lock; run bundle lock and commit "
                                           "Gemfile.lock")
    ruby = await find_ruby(tools, tree)
    bundler = await tools.present("bundle")
    if bundler is None:
        raise StepFailed("BuildJobFailed", "Ruby app: Bundler is not installed on this machine (Debian package "
                                           "ruby-bundler); it cannot be provisioned")
    base = {**ctx.env, "LANG": ctx.env.get("LANG", "en_US.UTF-8")}
    checked = await tools.executor.probe([bundler.exe, "check"], env={**base, **bundle_env(ctx, True)}, cwd=ctx.app)
    system = checked is not None and checked.ok and not tree.has_dir("vendor/cache")
    env = {**base, **bundle_env(ctx, system)}
    if system:
        log("=> Every gem in Gemfile.lock is already installed on this machine (e.g. Debian's ruby-* packages): "
            "using them instead of installing into vendor/bundle")
        step = ctx.command("Running bundle check", bundler.exe, "check", env=env)
    else:
        step = ctx.command("Running bundle install (deployment mode, without "
                           f"{env['BUNDLE_WITHOUT'].replace(':', ', ')})", bundler.exe, "install", "-j4", env=env)
    return [step], env, [ruby, bundler]


async def plan(ctx: BuildContext, tools: Toolchains, log: Log) -> Recipe:
    tree = Tree(ctx.source)
    steps, env, toolchains = await install_steps(ctx, tools, log)
    rails = rails_major(tree)
    run_env = {k: v for k, v in env.items() if k.startswith("BUNDLE_")}
    run_env.update({"LANG": env["LANG"], "RACK_ENV": ctx.user_env.get("RACK_ENV", "production"),
                    "PUMA_PERSISTENT_TIMEOUT": "95"})
    if rails:
        run_env.update({"RAILS_ENV": ctx.user_env.get("RAILS_ENV", "production"),
                        "RAILS_SERVE_STATIC_FILES": "enabled", "RAILS_LOG_TO_STDOUT": "enabled",
                        "SECRET_KEY_BASE": ctx.user_env.get("SECRET_KEY_BASE") or secrets.token_hex(64)})
        steps += _assets(ctx, tree, toolchains[1], {**env, **run_env, "SECRET_KEY_BASE_DUMMY": "1"}, rails, log)
    return Recipe(("digitalocean/ruby",), tuple(toolchains), tuple(steps), processes=default_processes(tree, rails),
                  run_env=run_env)


def _assets(ctx: BuildContext, tree: Tree, bundler: Toolchain, env: dict[str, str], rails: int,
            log: Log) -> list[Action]:
    if rails < 4:
        log("=> Rails before 4: assets are not precompiled")
        return []
    if any(tree.root.glob("public/assets/.sprockets-manifest-*.json")) or any(
            tree.root.glob("public/assets/manifest-*.json")):
        log("=> public/assets has a Sprockets manifest: assets are not precompiled again")
        return []
    return [ctx.command("Running rake assets:precompile", bundler.exe, "exec", "rake", "assets:precompile", env=env),
            ctx.command("Running rake assets:clean", bundler.exe, "exec", "rake", "assets:clean", env=env,
                        may_fail=True)]


def default_processes(tree: Tree, rails: int | None) -> dict[str, str]:
    """The process types a Ruby app gets without a Procfile line (``rails``: its Rails major version)."""
    if rails and rails >= 4:
        return {"web": "bin/rails server -p ${PORT:-5000} -e $RAILS_ENV"}
    if rails:
        return {"web": "bundle exec rails server -p ${PORT:-5000}"}
    if tree.has("config.ru"):
        return {"web": "bundle exec rackup config.ru -p ${PORT:-5000}"}
    return {}
