"""The run units of a plan: one frozen record per component, with DigitalOcean's running defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

Json = Mapping[str, Any]


class Kind(StrEnum):
    SERVICE = "service"
    WORKER = "worker"
    JOB = "job"
    STATIC_SITE = "static_site"
    FUNCTION = "function"
    DATABASE = "database"


class JobKind(StrEnum):
    PRE_DEPLOY = "PRE_DEPLOY"
    POST_DEPLOY = "POST_DEPLOY"
    FAILED_DEPLOY = "FAILED_DEPLOY"
    SCHEDULED = "SCHEDULED"


class BuildStrategy(StrEnum):
    BUILDPACK = "buildpack"  # detected from the files (or environment_slug)
    DOCKERFILE = "dockerfile"
    IMAGE = "image"  # nothing to build: the image is pulled
    NONE = "none"  # databases


# Spec list key → component kind, in the order DigitalOcean builds and deploys them.
KINDS: tuple[tuple[str, Kind], ...] = (
    ("services", Kind.SERVICE),
    ("workers", Kind.WORKER),
    ("jobs", Kind.JOB),
    ("static_sites", Kind.STATIC_SITE),
    ("functions", Kind.FUNCTION),
)
# The kinds a deployment object lists with their commit hashes (apps_deployment.services[] ...).
DEPLOYMENT_LISTS = {"service": "services", "worker": "workers", "job": "jobs", "static_site": "static_sites",
                    "function": "functions"}
MESSAGE_BASE = {"service": "service", "worker": "worker", "job": "job", "static_site": "static site",
                "function": "functions", "database": "database"}

DEFAULT_HTTP_PORT = 8080
DEFAULT_INDEX_DOCUMENT = "index.html"
DEFAULT_SCOPE = "RUN_AND_BUILD_TIME"
BUILD_SCOPES = frozenset({"BUILD_TIME", "RUN_AND_BUILD_TIME"})
RUN_SCOPES = frozenset({"RUN_TIME", "RUN_AND_BUILD_TIME"})
DEFAULT_DRAIN_SECONDS = 15.0  # reference §4.2
DEFAULT_GRACE_SECONDS = 120.0
DEFAULT_JOB_TIMEOUT_SECONDS = 1800.0  # reference §4.6: job deployments time out after 30 minutes
DEFAULT_MIN_TLS = "1.2"  # every custom domain is HTTPS, TLS 1.2 at least, as on DigitalOcean's edge
REGISTRY_HOSTS = {"DOCKER_HUB": "docker.io", "GHCR": "ghcr.io", "DOCR": "registry.digitalocean.com"}


# -- sources and builds ------------------------------------------------------------------------


@dataclass(frozen=True)
class GitSource:
    """A repository and the branch to follow (``None``: the remote's default branch)."""

    url: str
    branch: str | None = None
    provider: str = "git"  # git, github, gitlab, bitbucket
    deploy_on_push: bool = False


@dataclass(frozen=True)
class ImageSource:
    registry_type: str  # DOCKER_HUB, GHCR, DOCR
    repository: str
    registry: str | None = None
    tag: str | None = None  # ``reference`` uses "latest" when neither tag nor digest is set
    digest: str | None = None
    credentials: str | None = None  # ``user:token``, sealed as EV[...] like a SECRET
    deploy_on_push: bool = False

    @property
    def registry_host(self) -> str:
        return REGISTRY_HOSTS.get(self.registry_type, "docker.io")

    @property
    def reference(self) -> str:
        """The image as a registry reference (before any operator mirror is applied)."""
        path = self.repository
        if self.registry_type == "DOCKER_HUB":
            path = f"{self.registry}/{path}" if self.registry else (path if "/" in path else f"library/{path}")
        elif self.registry:
            path = f"{self.registry}/{path}"
        suffix = f"@{self.digest}" if self.digest else f":{self.tag or 'latest'}"
        return f"{self.registry_host}/{path}{suffix}"


Source = GitSource | ImageSource


@dataclass(frozen=True)
class BuildPlan:
    strategy: BuildStrategy
    source_dir: str = "."  # relative to the repository root; DigitalOcean writes "/" or "/api"
    build_command: str | None = None
    dockerfile_path: str | None = None  # relative to the repository root (reference §1.4)
    output_dir: str | None = None
    environment_slug: str | None = None

    @property
    def leaves_repository(self) -> bool:
        return ".." in PurePosixPath(self.source_dir).parts


@dataclass(frozen=True)
class Artifact:
    """What a build made, as a typed reference the runtime that made it can use again.

    ``directory``: a built tree on this machine; ``image``: an image reference (tag or digest).
    """

    kind: str  # "directory" | "image" | "none"
    location: str = ""
    reused: bool = False
    digest: str | None = None

    def as_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "location": self.location, "digest": self.digest}

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> Artifact | None:
        if not record or not record.get("kind"):
            return None
        return cls(str(record["kind"]), str(record.get("location") or ""), True,
                   str(record["digest"]) if record.get("digest") else None)


# -- running ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    slug: str
    cpus: float
    memory_bytes: int
    cpu_type: str = "SHARED"


@dataclass(frozen=True)
class Probe:
    """A readiness or liveness check (reference §4.3): HTTP GET on ``http_path`` (any 2xx/3xx is
    healthy) or a TCP connect when no path is set, judged after thresholds in a row."""

    port: int
    http_path: str | None = None
    initial_delay_seconds: float = 0
    period_seconds: float = 10
    timeout_seconds: float = 1
    success_threshold: int = 1
    failure_threshold: int = 9

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"probe port out of range: {self.port}")
        if self.period_seconds <= 0 or self.timeout_seconds <= 0 or self.initial_delay_seconds < 0:
            raise ValueError("probe delay must be >= 0, period and timeout > 0")
        if self.success_threshold < 1 or self.failure_threshold < 1:
            raise ValueError("probe thresholds must be >= 1")

    @property
    def patience_seconds(self) -> float:
        """How long a deployment waits for this check before calling the instance unhealthy."""
        return self.initial_delay_seconds + self.period_seconds * (self.failure_threshold + 1) + 30


READINESS_DEFAULTS: Mapping[str, float] = MappingProxyType({
    "initial_delay_seconds": 0, "period_seconds": 10, "timeout_seconds": 1,
    "success_threshold": 1, "failure_threshold": 9})
# Liveness waits longer before judging, so a slow boot is not mistaken for a hang.
LIVENESS_DEFAULTS: Mapping[str, float] = MappingProxyType({
    "initial_delay_seconds": 5, "period_seconds": 10, "timeout_seconds": 1,
    "success_threshold": 1, "failure_threshold": 18})


def probe_from_spec(spec: Json | None, default_port: int, liveness: bool = False) -> Probe:
    """A probe from a ``health_check``/``liveness_health_check`` object, DigitalOcean's defaults for
    what is unset; ``port`` in the spec overrides the component's ``http_port``."""
    spec = spec or {}
    defaults = LIVENESS_DEFAULTS if liveness else READINESS_DEFAULTS

    def pick(key: str) -> float:
        value = spec.get(key)
        return float(value) if value is not None else defaults[key]

    path = spec.get("http_path") or None
    return Probe(port=int(spec.get("port") or default_port), http_path=str(path) if path is not None else None,
                 initial_delay_seconds=pick("initial_delay_seconds"), period_seconds=pick("period_seconds"),
                 timeout_seconds=pick("timeout_seconds"),
                 # DigitalOcean accepts only 1 for liveness success (reference §4.3).
                 success_threshold=1 if liveness else int(pick("success_threshold")),
                 failure_threshold=int(pick("failure_threshold")))


@dataclass(frozen=True)
class Termination:
    drain_seconds: float = DEFAULT_DRAIN_SECONDS  # services only; 0 for the rest
    grace_period_seconds: float = DEFAULT_GRACE_SECONDS


@dataclass(frozen=True)
class Autoscaling:
    min_instances: int
    max_instances: int
    cpu_percent: int | None = None
    requests_per_second: int | None = None  # per instance
    p95_milliseconds: int | None = None


@dataclass(frozen=True)
class Schedule:
    cron: str
    time_zone: str = "UTC"


@dataclass(frozen=True)
class EnvVar:
    """One variable, raw: a SECRET's value is still sealed, ``${...}`` references unresolved."""

    key: str
    value: str
    scope: str = DEFAULT_SCOPE
    secret: bool = False


@dataclass(frozen=True)
class StaticDocs:
    index_document: str = DEFAULT_INDEX_DOCUMENT
    error_document: str | None = None
    catchall_document: str | None = None


@dataclass(frozen=True)
class DatabasePlan:
    engine: str = "PG"
    version: str | None = None
    production: bool = False
    cluster_name: str | None = None
    db_name: str | None = None
    db_user: str | None = None


@dataclass(frozen=True)
class LogDestination:
    name: str
    provider: str  # papertrail, datadog, logtail, open_search, or "endpoint" for the generic one
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False)


@dataclass(frozen=True)
class AlertRule:
    rule: str
    component: str = ""  # "" for app-level alerts
    operator: str | None = None
    value: float | None = None
    window: str | None = None
    disabled: bool = False
    spec: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False)


@dataclass(frozen=True)
class RunUnit:
    """One component of one deployment, as every runtime runs it."""

    name: str
    kind: Kind
    build: BuildPlan
    source: Source | None = None
    job_kind: JobKind | None = None
    run_command: str | None = None
    instance_count: int = 1  # the autoscaling minimum when autoscaled
    autoscaling: Autoscaling | None = None
    size: Size | None = None
    http_port: int | None = None
    protocol: str = "HTTP"
    internal_ports: tuple[int, ...] = ()
    readiness: Probe | None = None
    liveness: Probe | None = None
    termination: Termination = Termination()
    schedule: Schedule | None = None
    timeout_seconds: float | None = None  # jobs
    build_env: tuple[EnvVar, ...] = ()
    run_env: tuple[EnvVar, ...] = ()
    log_destinations: tuple[LogDestination, ...] = ()
    alerts: tuple[AlertRule, ...] = ()
    static: StaticDocs | None = None
    database: DatabasePlan | None = None
    inactivity_sleep_seconds: int | None = None
    commit: str | None = None  # once fetched (or pinned by a rollback)
    artifact: Artifact | None = None  # once built

    @property
    def builds(self) -> bool:
        return self.kind != Kind.DATABASE

    @property
    def runs_continuously(self) -> bool:
        return self.kind in (Kind.SERVICE, Kind.WORKER)

    @property
    def scheduled(self) -> bool:
        return self.job_kind == JobKind.SCHEDULED

    @property
    def deploys(self) -> bool:
        """Whether a deployment brings it up (its ``deploy.components`` step); other jobs only run once."""
        return self.kind in (Kind.SERVICE, Kind.WORKER, Kind.STATIC_SITE, Kind.FUNCTION) or self.scheduled

    @property
    def serves_http(self) -> bool:
        return self.kind == Kind.SERVICE and self.http_port is not None

    def instance_names(self, app_name: str, deployment_id: str) -> list[str]:
        """Stable names of its instances (``/instances``' ``instance_name``), the same in every runtime."""
        if not self.runs_continuously:
            return []
        return [self.instance_name(app_name, deployment_id, i) for i in range(self.instance_count)]

    def instance_name(self, app_name: str, deployment_id: str, index: int) -> str:
        """The name of its ``index``-th instance, also past ``instance_count`` (scaled up)."""
        return f"{app_name}-{self.name}-{deployment_id[:8]}-{index}"
