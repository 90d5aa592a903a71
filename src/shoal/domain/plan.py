"""The run plan: what one deployment asks a runtime to build and run, typed, made once from the spec.

Every runtime (``simulate``, ``local``, ``container``, ``kubernetes``), the deployer, insights and
the ingress publisher read this and nothing else: the normalised spec dict stops here. That is
where DigitalOcean's *running* defaults live (one instance, the default size, port 8080,
``index.html``, RUN_AND_BUILD_TIME, POST_DEPLOY, ``latest``), so a spec can be stored and echoed
as the user wrote it while every backend runs it the same way.

Values a unit cannot know until the deployment runs stay out of it, or are filled in later by
``AppPlan.with_progress``: the commit fetched for a component, the artefact its build made.
Environment values are kept raw (``SECRET`` values still sealed, ``${...}`` bindables still
unresolved) because what they resolve to is the runtime's to say: ``${api.PRIVATE_URL}`` is a
loopback port for processes and ``http://api:8080`` for containers.

The offline rule also lives here (reference §4.10): maintenance mode (``enabled``) keeps
everything running behind the offline page; an archived app (``archive``, which implies
``enabled``) runs nothing but its dev databases, whose data must survive un-archiving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from shoal.domain.routing import Route, routes_for
from shoal.spec import catalog

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
        return [f"{app_name}-{self.name}-{deployment_id[:8]}-{i}" for i in range(self.instance_count)]


# -- the app part ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    name: str
    type: str = "UNSPECIFIED"
    wildcard: bool = False
    minimum_tls_version: str = DEFAULT_MIN_TLS


@dataclass(frozen=True)
class Maintenance:
    enabled: bool = False
    archive: bool = False
    offline_page_url: str | None = None

    @property
    def offline(self) -> bool:
        """The ingress answers every request with the offline page: maintenance mode or archived."""
        return self.enabled or self.archive


@dataclass(frozen=True)
class AppPlan:
    """A deployment of an app: its units and how the app is reached."""

    app_id: str
    app_name: str
    deployment_id: str
    units: tuple[RunUnit, ...]
    account_id: str = ""  # the owner: secrets are sealed under it
    region: str = catalog.DEFAULT_REGION
    default_host: str = ""  # the app's own host on shoal's ingress
    app_url: str = ""  # ${APP_URL}: the primary domain's URL, else the default host's
    domains: tuple[Domain, ...] = ()
    routes: tuple[Route, ...] = ()
    maintenance: Maintenance = Maintenance()
    error_page_url: str | None = None
    app_envs: tuple[EnvVar, ...] = ()  # app-level, for tools that need them alone (the units hold them merged)
    alerts: tuple[AlertRule, ...] = ()  # app-level rules
    force_build: bool = False
    previous_deployment_id: str | None = None

    def unit(self, name: str) -> RunUnit:
        for found in self.units:
            if found.name == name:
                return found
        raise KeyError(name)

    @property
    def archived(self) -> bool:
        return self.maintenance.archive

    @property
    def offline(self) -> bool:
        return self.maintenance.offline

    @property
    def running(self) -> tuple[RunUnit, ...]:
        """What this deployment builds and runs: everything, unless the app is archived — then its databases."""
        return tuple(u for u in self.units if not self.archived or u.kind == Kind.DATABASE)

    @property
    def stopped(self) -> tuple[RunUnit, ...]:
        """What an archived app keeps stopped (nothing otherwise)."""
        return tuple(u for u in self.units if u.kind != Kind.DATABASE) if self.archived else ()

    @property
    def hosts(self) -> tuple[str, ...]:
        """Where the ingress serves the app: its default host, then each domain (and ``*.`` for wildcards)."""
        names = [self.default_host] if self.default_host else []
        for domain in self.domains:
            names += [domain.name, f"*.{domain.name}"] if domain.wildcard else [domain.name]
        return tuple(names)

    @property
    def primary_domain(self) -> str | None:
        return next((d.name for d in self.domains if d.type == "PRIMARY"), None)

    @property
    def min_tls(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for domain in self.domains:
            found[domain.name] = domain.minimum_tls_version
            if domain.wildcard:
                found[f"*.{domain.name}"] = domain.minimum_tls_version
        return found

    @property
    def commits(self) -> dict[str, str]:
        return {u.name: u.commit for u in self.units if u.commit}

    def with_progress(self, commits: Mapping[str, str], artifacts: Mapping[str, Artifact] | None = None) -> AppPlan:
        """The plan with what the deployment has learnt so far: fetched commits and built artefacts."""
        artifacts = artifacts or {}
        units = tuple(replace(u, commit=commits.get(u.name) or u.commit,
                              artifact=artifacts.get(u.name) or u.artifact) for u in self.units)
        return replace(self, units=units)


# -- making the plan -------------------------------------------------------------------------------


def units_of(spec: Json) -> tuple[RunUnit, ...]:
    """Every component of a normalised spec as a run unit, in DigitalOcean's order, databases last."""
    app_envs = _envs(spec.get("envs"))
    units = [_unit(kind, c, app_envs) for key, kind in KINDS for c in spec.get(key) or []]
    units += [_database(d) for d in spec.get("databases") or []]
    return tuple(units)


def make_plan(spec: Json, *, app_id: str, deployment_id: str, account_id: str = "", default_host: str = "",
              app_url: str = "", force_build: bool = False, previous_deployment_id: str | None = None,
              commits: Mapping[str, str] | None = None, artifacts: Mapping[str, Artifact] | None = None) -> AppPlan:
    """The plan of one deployment of ``spec`` (a normalised spec, as the store holds it).

    ``app_url`` is ${APP_URL} as the caller's ingress writes URLs; when empty it is
    ``http://`` + the primary domain or the default host.
    """
    domains = tuple(_domain(d) for d in spec.get("domains") or [] if d.get("domain"))
    maintenance = spec.get("maintenance") or {}
    plan = AppPlan(
        app_id=app_id, app_name=str(spec.get("name") or ""), deployment_id=deployment_id, units=units_of(spec),
        account_id=account_id, region=str(spec.get("region") or catalog.DEFAULT_REGION),
        default_host=default_host, domains=domains, routes=tuple(routes_for(dict(spec))),
        maintenance=Maintenance(enabled=bool(maintenance.get("enabled")), archive=bool(maintenance.get("archive")),
                                offline_page_url=_text(maintenance.get("offline_page_url"))),
        error_page_url=_text((spec.get("ingress") or {}).get("custom_error_page_url")),
        app_envs=_envs(spec.get("envs")), alerts=_alerts(spec.get("alerts"), ""),
        force_build=force_build, previous_deployment_id=previous_deployment_id)
    host = plan.primary_domain or default_host
    plan = replace(plan, app_url=app_url or (f"http://{host}" if host else ""))
    return plan.with_progress(commits or {}, artifacts) if commits or artifacts else plan


def archived(spec: Json) -> bool:
    """``maintenance.archive``: the app is archived, its components stopped (an API rule reads it too)."""
    return bool((spec.get("maintenance") or {}).get("archive"))


def running_units(spec: Json) -> tuple[RunUnit, ...]:
    kept = archived(spec)
    return tuple(u for u in units_of(spec) if not kept or u.kind == Kind.DATABASE)


def stopped_units(spec: Json) -> tuple[RunUnit, ...]:
    return tuple(u for u in units_of(spec) if u.kind != Kind.DATABASE) if archived(spec) else ()


def jobs_of_kind(units: Sequence[RunUnit], job_kind: JobKind) -> list[RunUnit]:
    return [u for u in units if u.kind == Kind.JOB and u.job_kind == job_kind]


def alert_rules(spec: Json) -> list[AlertRule]:
    """Every alert of the spec, the app's first, then each component's."""
    found = list(_alerts(spec.get("alerts"), ""))
    for unit in units_of(spec):
        found += unit.alerts
    return found


# -- readers of the spec dict (the only ones) ------------------------------------------------------


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _envs(raw: object) -> tuple[EnvVar, ...]:
    found = []
    for var in raw if isinstance(raw, list) else []:
        if not var.get("key"):
            continue
        scope = str(var.get("scope") or DEFAULT_SCOPE)
        found.append(EnvVar(key=str(var["key"]), value="" if var.get("value") is None else str(var["value"]),
                            scope=DEFAULT_SCOPE if scope == "UNSET" else scope, secret=var.get("type") == "SECRET"))
    return tuple(found)


def _layered(app_envs: tuple[EnvVar, ...], own: tuple[EnvVar, ...], scopes: frozenset[str]) -> tuple[EnvVar, ...]:
    """App-level variables, then the component's: a component variable with the same key wins."""
    merged: dict[str, EnvVar] = {}
    for var in (*app_envs, *own):
        if var.scope in scopes:
            merged[var.key] = var
    return tuple(merged.values())


def _source(spec: Json) -> Source | None:
    git = spec.get("git")
    if isinstance(git, Mapping) and git.get("repo_clone_url"):
        return GitSource(str(git["repo_clone_url"]), _text(git.get("branch")))
    for provider in ("github", "gitlab", "bitbucket"):
        block = spec.get(provider)
        if isinstance(block, Mapping) and block.get("repo"):
            return GitSource(str(block["repo"]), _text(block.get("branch")), provider,
                             bool(block.get("deploy_on_push")))
    image = spec.get("image")
    if isinstance(image, Mapping) and image.get("repository"):
        return ImageSource(registry_type=str(image.get("registry_type") or "DOCKER_HUB"),
                           repository=str(image["repository"]), registry=_text(image.get("registry")),
                           tag=_text(image.get("tag")), digest=_text(image.get("digest")),
                           credentials=_text(image.get("registry_credentials")),
                           deploy_on_push=bool((image.get("deploy_on_push") or {}).get("enabled")))
    return None


def _build(spec: Json, source: Source | None) -> BuildPlan:
    if isinstance(source, ImageSource):
        strategy = BuildStrategy.IMAGE
    elif spec.get("dockerfile_path"):
        strategy = BuildStrategy.DOCKERFILE
    else:
        strategy = BuildStrategy.BUILDPACK
    source_dir = str(PurePosixPath(str(spec.get("source_dir") or "/").strip("/") or "."))
    return BuildPlan(strategy=strategy, source_dir=source_dir, build_command=_text(spec.get("build_command")),
                     dockerfile_path=_text(spec.get("dockerfile_path")), output_dir=_text(spec.get("output_dir")),
                     environment_slug=_text(spec.get("environment_slug")))


def _size(spec: Json) -> Size:
    slug = str(spec.get("instance_size_slug") or catalog.DEFAULT_INSTANCE_SIZE)
    found = catalog.INSTANCE_SIZES_BY_SLUG.get(slug) or catalog.INSTANCE_SIZES_BY_SLUG[catalog.DEFAULT_INSTANCE_SIZE]
    return Size(slug=slug, cpus=float(found.cpus), memory_bytes=found.memory_bytes, cpu_type=found.cpu_type)


def _autoscaling(spec: Json) -> Autoscaling | None:
    raw = spec.get("autoscaling")
    if not isinstance(raw, Mapping):
        return None
    metrics = raw.get("metrics") or {}
    low = int(raw.get("min_instance_count") or 1)
    cpu = metrics.get("cpu")
    return Autoscaling(min_instances=low, max_instances=max(low, int(raw.get("max_instance_count") or low)),
                       cpu_percent=int(cpu.get("percent") or 80) if isinstance(cpu, Mapping) else None,
                       requests_per_second=(metrics.get("requests_per_second") or {}).get("per_instance"),
                       p95_milliseconds=(metrics.get("request_duration") or {}).get("p95_milliseconds"))


def _log_destinations(raw: object) -> tuple[LogDestination, ...]:
    found = []
    for dest in raw if isinstance(raw, list) else []:
        provider = next((k for k in ("papertrail", "datadog", "logtail", "open_search") if dest.get(k)), "endpoint")
        settings = dest.get(provider) if provider != "endpoint" else \
            {k: v for k, v in dest.items() if k in ("endpoint", "headers", "tls_insecure")}
        found.append(LogDestination(str(dest.get("name") or ""), provider, MappingProxyType(dict(settings or {}))))
    return tuple(found)


def _alerts(raw: object, component: str) -> tuple[AlertRule, ...]:
    found = []
    for alert in raw if isinstance(raw, list) else []:
        value = alert.get("value")
        found.append(AlertRule(rule=str(alert.get("rule") or "UNSPECIFIED_RULE"), component=component,
                               operator=_text(alert.get("operator")),
                               value=float(value) if value is not None else None,
                               window=_text(alert.get("window")), disabled=bool(alert.get("disabled")),
                               spec=MappingProxyType(dict(alert))))
    return tuple(found)


def _duration_seconds(text: object) -> float | None:
    """A Go-style duration ("30m", "1h30m", "21600s") in seconds; ``None`` when unset or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    for char in text.strip():
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total, number = total + float(number) * units[char], ""
        else:
            return None
    return total if not number else None


def _job_kind(spec: Json) -> JobKind:
    kind = str(spec.get("kind") or "POST_DEPLOY")
    return JobKind.POST_DEPLOY if kind == "UNSPECIFIED" else JobKind(kind)


def _unit(kind: Kind, spec: Json, app_envs: tuple[EnvVar, ...]) -> RunUnit:
    source = _source(spec)
    own = _envs(spec.get("envs"))
    unit = RunUnit(name=str(spec.get("name")), kind=kind, build=_build(spec, source), source=source,
                   run_command=_text(spec.get("run_command")),
                   build_env=_layered(app_envs, own, BUILD_SCOPES), run_env=_layered(app_envs, own, RUN_SCOPES),
                   log_destinations=_log_destinations(spec.get("log_destinations")),
                   alerts=_alerts(spec.get("alerts"), str(spec.get("name"))))
    if kind in (Kind.SERVICE, Kind.WORKER, Kind.JOB):
        unit = _compute(unit, kind, spec)
    if kind == Kind.STATIC_SITE:
        unit = replace(unit, static=StaticDocs(index_document=str(spec.get("index_document") or DEFAULT_INDEX_DOCUMENT),
                                               error_document=_text(spec.get("error_document")),
                                               catchall_document=_text(spec.get("catchall_document"))))
    return unit


def _compute(unit: RunUnit, kind: Kind, spec: Json) -> RunUnit:
    autoscaling = _autoscaling(spec)
    count = autoscaling.min_instances if autoscaling else int(spec.get("instance_count") or 1)
    termination = spec.get("termination") or {}
    grace = float(termination.get("grace_period_seconds") or DEFAULT_GRACE_SECONDS)
    unit = replace(unit, instance_count=count, autoscaling=autoscaling, size=_size(spec),
                   termination=Termination(drain_seconds=float(termination.get("drain_seconds") or DEFAULT_DRAIN_SECONDS)
                                           if kind == Kind.SERVICE else 0.0, grace_period_seconds=grace))
    if kind == Kind.JOB:
        job_kind = _job_kind(spec)
        schedule = spec.get("schedule") or {}
        return replace(unit, job_kind=job_kind,
                       schedule=Schedule(str(schedule.get("cron")), str(schedule.get("time_zone") or "UTC"))
                       if job_kind == JobKind.SCHEDULED and schedule.get("cron") else None,
                       timeout_seconds=_duration_seconds(spec.get("timeout")) or DEFAULT_JOB_TIMEOUT_SECONDS)
    if kind == Kind.SERVICE:
        internal = tuple(int(p) for p in spec.get("internal_ports") or [])
        # A service listing internal_ports and no http_port is private: no 8080 default.
        port = spec.get("http_port")
        http_port = int(port) if port else (None if internal else DEFAULT_HTTP_PORT)
        probe_port = http_port or (internal[0] if internal else DEFAULT_HTTP_PORT)
        sleep = (spec.get("inactivity_sleep") or {}).get("after_seconds")
        unit = replace(unit, http_port=http_port, internal_ports=internal, protocol=str(spec.get("protocol") or "HTTP"),
                       readiness=probe_from_spec(spec.get("health_check"), probe_port),
                       inactivity_sleep_seconds=int(sleep) if sleep else None)
    liveness = spec.get("liveness_health_check")
    if liveness:
        default = unit.http_port or (unit.internal_ports[0] if unit.internal_ports else DEFAULT_HTTP_PORT)
        unit = replace(unit, liveness=probe_from_spec(liveness, default, liveness=True))
    return unit


def _database(spec: Json) -> RunUnit:
    return RunUnit(name=str(spec.get("name")), kind=Kind.DATABASE, build=BuildPlan(BuildStrategy.NONE),
                   database=DatabasePlan(engine=str(spec.get("engine") or "PG"), version=_text(spec.get("version")),
                                         production=bool(spec.get("production")),
                                         cluster_name=_text(spec.get("cluster_name")),
                                         db_name=_text(spec.get("db_name")), db_user=_text(spec.get("db_user"))))


def _domain(spec: Json) -> Domain:
    return Domain(name=str(spec["domain"]), type=str(spec.get("type") or "UNSPECIFIED"),
                  wildcard=bool(spec.get("wildcard")),
                  minimum_tls_version=str(spec.get("minimum_tls_version") or DEFAULT_MIN_TLS))
