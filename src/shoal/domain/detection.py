"""What a source would be built as: the request and answer of ``POST /v2/apps/detect`` (godo's
``AppsService.Detect``), typed (pure).

The request names one git source (``git``, ``github``, ``gitlab`` or ``bitbucket``, as a component's
source), optionally a commit instead of the branch's tip and a ``source_dir``. The answer lists the
components found there — each with godo's ``DetectResponseType`` strategy — and, when the repository
carries DigitalOcean's "deploy to DO" template (``.do/deploy.template.yaml``), that template's spec and
whether it is valid. The adapter that fetches and looks is behind ``ports.SourceDetector``.

Must not: fetch, read files, or know the wire's JSON (the API shapes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shoal.domain.plan import GitSource

Strategy = Literal["UNSPECIFIED", "DOCKERFILE", "BUILDPACK", "HTML", "SERVERLESS"]
DEPLOY_TEMPLATE = ".do/deploy.template.yaml"  # DigitalOcean's "deploy to DO" button reads this file


@dataclass(frozen=True)
class DetectRequest:
    """A source to look at; ``source_dir`` is relative to the repository root ("." for the root)."""

    source: GitSource
    commit_sha: str | None = None
    source_dir: str = "."


@dataclass(frozen=True)
class DetectedBuildpack:
    """One buildpack a detected component would be built with (godo's ``Buildpack``)."""

    id: str
    version: str
    major_version: int
    name: str
    description: tuple[str, ...]
    docs_link: str


@dataclass(frozen=True)
class ServerlessFunction:
    """A function of a Functions project, limits in OpenWhisk's units (ms, MB, KB)."""

    name: str
    package: str
    runtime: str
    timeout_ms: int
    memory_mb: int
    logs_kb: int


@dataclass(frozen=True)
class ServerlessPackage:
    name: str
    functions: tuple[ServerlessFunction, ...]


@dataclass(frozen=True)
class DetectedComponent:
    """How one component of the source would be built (godo's ``DetectResponseComponent``)."""

    strategy: Strategy
    types: tuple[str, ...] = ()  # languages as DigitalOcean names them: "Python", "Node.js", ...
    dockerfiles: tuple[str, ...] = ()
    build_command: str = ""
    run_command: str = ""
    environment_slug: str = ""
    http_ports: tuple[int, ...] = ()
    serverless_packages: tuple[ServerlessPackage, ...] = ()
    source_dir: str = ""
    buildpacks: tuple[DetectedBuildpack, ...] = ()


@dataclass(frozen=True)
class DeployTemplate:
    """The repository's deploy template: absent, or found and valid (with its spec) or not (with why)."""

    found: bool = False
    valid: bool = False
    error: str = ""
    spec: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Detected:
    """The whole answer; detection here is synchronous, so it is never ``pending``."""

    components: tuple[DetectedComponent, ...]
    template: DeployTemplate = DeployTemplate()
