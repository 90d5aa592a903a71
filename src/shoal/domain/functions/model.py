"""What a Functions project is once read: its actions, their limits and web mode, and its problems.

Pure values, shared by the reader (``project``), the pieces it reads with (``tree``, ``substitution``), the web
action contract (``web``) and the runtimes that run the actions. Also the JSON record an ``Action`` travels as
from the build to the gateway, so both ends read it the same way. Nothing here parses ``project.yml`` or looks
at files: that is ``project``'s and ``tree``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from shoal.core.errors import InvalidArgument

PROJECT_FILE = "project.yml"
DEFAULT_PACKAGE = "default"
# DigitalOcean's defaults for a function's limits (``doctl serverless functions get`` shows these);
# the sources read do not state the default timeout, so this one is inferred.
DEFAULT_TIMEOUT_MS = 3000
DEFAULT_MEMORY_MB = 256
DEFAULT_LOGS_KB = 16
TIMEOUT_RANGE_MS = (100, 900_000)  # max 15 minutes (reference §3.2)
MEMORY_RANGE_MB = (128, 1024)


class WebMode(StrEnum):
    OFF = "false"
    ON = "true"
    RAW = "raw"


@dataclass(frozen=True)
class Limits:
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    memory_mb: int = DEFAULT_MEMORY_MB
    logs_kb: int = DEFAULT_LOGS_KB


@dataclass(frozen=True)
class Action:
    """One function: where its code is (relative to the project root) and how it is invoked."""

    package: str  # "default" when it has none
    name: str
    runtime: str  # canonical "<language>:<version>", e.g. "python:3.11"
    path: str  # "packages/sample/hello.py" or "packages/sample/hello" (a directory)
    is_directory: bool
    entry: str = ""  # what the worker loads: the file, a directory's __main__.py / single file, or the
    # directory itself for Node.js (package.json "main" or index.js); "" means ``path``
    main: str = "main"
    web: WebMode = WebMode.ON
    web_secure: str | None = None  # callers must send X-Require-Whisk-Auth with this value
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    annotations: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    limits: Limits = Limits()

    @property
    def language(self) -> str:
        return self.runtime.split(":", 1)[0].removesuffix("-lambda")

    @property
    def qualified_name(self) -> str:
        """``package/action`` as in its URL (``default/action`` for one without a package)."""
        return f"{self.package}/{self.name}"

    @property
    def custom_options(self) -> bool:
        """``web-custom-options``: the action answers OPTIONS and sets its own CORS headers."""
        return self.annotations.get("web-custom-options") is True


@dataclass(frozen=True)
class Project:
    actions: tuple[Action, ...]
    notes: tuple[str, ...] = ()  # things worth a build log line (ignored triggers, ...)

    def action(self, package: str, name: str) -> Action | None:
        return next((a for a in self.actions if a.package == package and a.name == name), None)


@dataclass(frozen=True, order=True)
class ProjectProblem:
    file: str  # "project.yml" or the action's path
    path: str  # "packages[0].actions[1].runtime"; "" for the file as a whole
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"


class ProjectInvalid(InvalidArgument):
    def __init__(self, problems: list[ProjectProblem]) -> None:
        self.problems = sorted(set(problems)) or [ProjectProblem(PROJECT_FILE, "", "the project is invalid")]
        count = f"{len(self.problems)} problems: " if len(self.problems) > 1 else ""
        super().__init__("functions project is invalid: " + count + "; ".join(str(p) for p in self.problems))



# -- the record the runtime hands its gateway (JSON) -------------------------------------------------


def action_record(action: Action) -> dict[str, Any]:
    return {"package": action.package, "name": action.name, "runtime": action.runtime, "path": action.path,
            "is_directory": action.is_directory, "entry": action.entry, "main": action.main, "web": action.web.value,
            "web_secure": action.web_secure, "parameters": dict(action.parameters),
            "environment": dict(action.environment), "annotations": dict(action.annotations),
            "limits": {"timeout_ms": action.limits.timeout_ms, "memory_mb": action.limits.memory_mb,
                       "logs_kb": action.limits.logs_kb}}


def action_from_record(record: Mapping[str, Any]) -> Action:
    limits = record.get("limits") or {}
    return Action(package=str(record["package"]), name=str(record["name"]), runtime=str(record["runtime"]),
                  path=str(record["path"]), is_directory=bool(record["is_directory"]),
                  entry=str(record.get("entry") or ""),
                  main=str(record.get("main") or "main"), web=WebMode(record.get("web") or "true"),
                  web_secure=record.get("web_secure"),
                  parameters=MappingProxyType(dict(record.get("parameters") or {})),
                  environment=MappingProxyType({str(k): str(v) for k, v in (record.get("environment") or {}).items()}),
                  annotations=MappingProxyType(dict(record.get("annotations") or {})),
                  limits=Limits(int(limits.get("timeout_ms", DEFAULT_TIMEOUT_MS)),
                                int(limits.get("memory_mb", DEFAULT_MEMORY_MB)),
                                int(limits.get("logs_kb", DEFAULT_LOGS_KB))))
