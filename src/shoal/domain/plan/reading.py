"""Making a plan from a normalised spec: the only reader of the spec dict for running."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from types import MappingProxyType

from shoal.domain.plan.app import AppPlan, Domain, Maintenance
from shoal.domain.plan.units import (BUILD_SCOPES, DEFAULT_DRAIN_SECONDS, DEFAULT_GRACE_SECONDS, DEFAULT_HTTP_PORT,
                                     DEFAULT_INDEX_DOCUMENT, DEFAULT_JOB_TIMEOUT_SECONDS, DEFAULT_MIN_TLS,
                                     DEFAULT_SCOPE, KINDS, RUN_SCOPES, AlertRule, Artifact, Autoscaling, BuildPlan,
                                     BuildStrategy, DatabasePlan, EnvVar, GitSource, ImageSource, Json, JobKind, Kind,
                                     LogDestination, RunUnit, Schedule, Size, Source, StaticDocs, Termination,
                                     probe_from_spec)
from shoal.domain.routing import routes_for, secure_headers
from shoal.spec import catalog
from shoal.spec.defaults import resolve_region


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
        account_id=account_id, region=resolve_region(spec.get("region")),  # the spec echoes what was sent
        default_host=default_host, domains=domains, routes=tuple(routes_for(dict(spec))),
        maintenance=Maintenance(enabled=bool(maintenance.get("enabled")), archive=bool(maintenance.get("archive")),
                                offline_page_url=_text(maintenance.get("offline_page_url"))),
        error_page_url=_text((spec.get("ingress") or {}).get("custom_error_page_url")),
        secure_headers=secure_headers(dict(spec)),
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


def source_of(spec: Json) -> Source | None:
    """The source block of a component (or of a detect request, which has the same fields)."""
    return _source(spec)


def source_dir_of(value: object) -> str:
    """A ``source_dir`` ("/", "/api", "api/") relative to the repository root ("." for the root)."""
    return str(PurePosixPath(str(value or "/").strip("/") or "."))


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
    source_dir = source_dir_of(spec.get("source_dir"))
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
        own = dict(dest.get(provider) or {}) if provider != "endpoint" else {}
        # godo's generic fields: alone they are a destination of their own; beside one of the four
        # kinds, ``headers`` and ``tls_insecure`` still apply to it (its own ``endpoint`` wins).
        generic = {k: v for k, v in dest.items() if k in ("headers", "tls_insecure")
                   or (k == "endpoint" and provider == "endpoint")}
        found.append(LogDestination(str(dest.get("name") or ""), provider, MappingProxyType({**own, **generic})))
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
