"""The app part of a plan: how the app is reached (hosts, domains, routes) and whether it is offline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from shoal.domain.plan.units import DEFAULT_MIN_TLS, AlertRule, Artifact, EnvVar, Kind, RunUnit
from shoal.domain.routing import Route, SecureHeaders
from shoal.spec import catalog


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
    secure_headers: SecureHeaders | None = None  # ingress.secure_header: set/removed on every answer
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
