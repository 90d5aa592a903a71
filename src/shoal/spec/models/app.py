"""The top-level AppSpec and its app-wide settings (egress, maintenance, VPC)."""

from __future__ import annotations

from typing import Literal

from shoal.spec.models.alerts import AlertSpec
from shoal.spec.models.base import SpecModel
from shoal.spec.models.components import Function, Job, Service, StaticSite, Worker
from shoal.spec.models.databases import Database
from shoal.spec.models.domains import Domain
from shoal.spec.models.envs import EnvVar
from shoal.spec.models.ingress import Ingress


class Egress(SpecModel):
    type: Literal["AUTOASSIGN", "DEDICATED_IP"] | None = None


class Maintenance(SpecModel):
    enabled: bool | None = None
    archive: bool | None = None
    offline_page_url: str | None = None


class EgressIp(SpecModel):
    ip: str | None = None


class Vpc(SpecModel):
    id: str | None = None
    # Read-only in the OpenAPI, but GET returns it inside the spec, so a re-submitted spec carries it.
    egress_ips: list[EgressIp] | None = None


class AppSpec(SpecModel):
    name: str
    region: str | None = None
    disable_edge_cache: bool | None = None
    disable_email_obfuscation: bool | None = None
    enhanced_threat_control_enabled: bool | None = None
    services: list[Service] | None = None
    static_sites: list[StaticSite] | None = None
    workers: list[Worker] | None = None
    jobs: list[Job] | None = None
    functions: list[Function] | None = None
    databases: list[Database] | None = None
    domains: list[Domain] | None = None
    envs: list[EnvVar] | None = None
    alerts: list[AlertSpec] | None = None
    ingress: Ingress | None = None
    egress: Egress | None = None
    maintenance: Maintenance | None = None
    vpc: Vpc | None = None
    features: list[str] | None = None
