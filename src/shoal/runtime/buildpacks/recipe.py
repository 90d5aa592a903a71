"""A build as data: the steps to run, and how the result runs.

Role: the typed values a buildpack's planner returns and an executor carries out. A ``Recipe`` is
independent of where it runs: its paths are as the *executor* sees them (``BuildContext.app`` is the
host directory for the process runtime, ``/workspace`` inside a build container), so one planner
serves both runtimes.

Must not: run anything. Executing is ``executor.py``'s job; planning (which needs to ask the executor
which toolchains exist) is each language module's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

Log = Callable[[str], None]
Origin = Literal["stack image", "host", "provisioned"]


@dataclass(frozen=True)
class Toolchain:
    """A language tool a build uses, its version and where it came from (said in the BUILD log).

    ``bin_dir`` is ``None`` when the tool is found on the executor's ``PATH``; otherwise it is put first
    on ``PATH`` for the build (and for the run, when ``needed_at_run`` — Node, PHP, Ruby, Python).
    """

    name: str
    version: str
    origin: Origin
    bin_dir: PurePosixPath | None = None
    detail: str = ""
    command: str = ""

    @property
    def exe(self) -> str:
        """The command to run the tool by (a full path when it was provisioned)."""
        name = self.command or self.name
        return str(self.bin_dir / name) if self.bin_dir else name

    def describe(self) -> str:
        where = {"stack image": "from the stack image", "host": "from the host",
                 "provisioned": "provisioned by shoal"}[self.origin]
        return f"{self.name} {self.version} ({where}{': ' + self.detail if self.detail else ''})"


@dataclass(frozen=True)
class Command:
    """Run ``argv`` in ``cwd`` with exactly ``env``; the log says ``says`` first ("Running npm ci").

    A non-zero exit fails the build with ``BuildJobExitNonZero``, unless ``may_fail`` (then the log says
    so and the build goes on — used for optional steps such as pruning).
    """

    says: str
    argv: tuple[str, ...]
    cwd: PurePosixPath
    env: Mapping[str, str]
    may_fail: bool = False


@dataclass(frozen=True)
class WriteFile:
    """Write ``content`` to ``path`` (parents created) with ``mode``: launch scripts, config files."""

    says: str
    path: PurePosixPath
    content: str
    mode: int = 0o644


Action = Command | WriteFile


@dataclass(frozen=True)
class Recipe:
    """Everything one buildpack build does, and what it leaves for the run.

    ``processes`` are the buildpack's default process types (``web: bin/hello``) — a Procfile and the
    spec's ``run_command`` win over them. ``run_env`` is added to every process's environment below the
    user's own run-time variables; ``plan`` sets its ``PATH`` from ``run_path`` (the directories the
    buildpacks put first: a virtualenv's ``bin``, ``node_modules/.bin``, a provisioned toolchain). ``output_dir`` is where a static generator writes (relative to the
    app), used when the spec names none.
    """

    buildpacks: tuple[str, ...]
    toolchains: tuple[Toolchain, ...]
    steps: tuple[Action, ...]
    processes: Mapping[str, str] = field(default_factory=dict)
    run_env: Mapping[str, str] = field(default_factory=dict)
    output_dir: str | None = None
    run_path: tuple[PurePosixPath, ...] = ()


@dataclass(frozen=True)
class BuildContext:
    """What a planner knows about one build.

    ``source`` is the app directory on the host (planners read files there); ``app``, ``layers`` and
    ``cache`` are the same build's directories as the executor sees them. ``layers`` holds what the
    buildpacks add outside the app (a virtualenv, launch scripts); ``cache`` persists between builds of
    the same component (Go's build cache, npm's cache). ``env`` is the build's base environment: the
    executor's ``PATH``/``HOME`` and quiet-tool defaults, then the spec's build-time variables on top.
    ``user_env`` is those spec variables alone (some steps — DISABLE_COLLECTSTATIC — read them).
    """

    source: Path
    app: PurePosixPath
    layers: PurePosixPath
    cache: PurePosixPath
    kind: str
    env: Mapping[str, str]
    user_env: Mapping[str, str]
    build_command: str | None = None
    environment_slug: str | None = None
    fast_installer: bool = True  # uv for Python when available; False measures plain venv + pip (bench)

    def command(self, says: str, *argv: str, env: Mapping[str, str] | None = None,
                cwd: PurePosixPath | None = None, may_fail: bool = False) -> Command:
        """A step in the app directory with the build's environment plus ``env``."""
        return Command(says, tuple(argv), cwd or self.app, {**self.env, **(env or {})}, may_fail)


def with_path(env: Mapping[str, str], *dirs: PurePosixPath | None) -> dict[str, str]:
    """``env`` with ``dirs`` (those not ``None``) put first on its ``PATH``."""
    front = [str(d) for d in dirs if d is not None]
    rest = env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    return {**env, "PATH": ":".join([*front, rest]) if front else rest}
