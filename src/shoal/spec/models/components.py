"""The five component kinds: services, static sites, workers, jobs and functions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from shoal.spec.models.alerts import AlertSpec
from shoal.spec.models.base import InstanceCount, Integer, Port, SpecModel, Text
from shoal.spec.models.envs import EnvVar
from shoal.spec.models.ingress import CorsPolicy, Route
from shoal.spec.models.logs import LogDestination
from shoal.spec.models.runtime import (
    HealthCheck,
    ServiceAutoscaling,
    ServiceTermination,
    WorkerAutoscaling,
    WorkerTermination,
)
from shoal.spec.models.sources import ImageSource, SourceFields


def _job_kind_alias(value: Any) -> Any:
    # Invocation triggers are spelled SCHEDULE by the OpenAPI and SCHEDULED by godo; take both.
    return "SCHEDULED" if value == "SCHEDULE" else value


JobKind = Annotated[
    Literal["UNSPECIFIED", "PRE_DEPLOY", "POST_DEPLOY", "FAILED_DEPLOY", "SCHEDULED"],
    BeforeValidator(_job_kind_alias),
]


class Sourced(SourceFields):
    # Functions and static sites may not use images, but accepting the field here lets the rules
    # say so plainly instead of reporting an "unknown field".
    image: ImageSource | None = None


class ComponentBase(Sourced):
    name: str
    dockerfile_path: Text | None = None
    build_command: Text | None = None
    run_command: Text | None = None
    source_dir: Text | None = None
    environment_slug: str | None = None
    envs: list[EnvVar] | None = None
    log_destinations: list[LogDestination] | None = None


class StaticSite(ComponentBase):
    index_document: str | None = None
    error_document: str | None = None
    catchall_document: str | None = None
    output_dir: Text | None = None
    cors: CorsPolicy | None = None
    routes: list[Route] | None = None


class Compute(ComponentBase):
    """Fields shared by the components that run on instances: services, workers and jobs."""

    instance_size_slug: str | None = None
    instance_count: InstanceCount | None = None
    alerts: list[AlertSpec] | None = None


class Worker(Compute):
    autoscaling: WorkerAutoscaling | None = None
    termination: WorkerTermination | None = None
    liveness_health_check: HealthCheck | None = None


class LoadingPage(SpecModel):
    enabled: bool | None = None
    custom_url: str | None = None


class InactivitySleep(SpecModel):
    after_seconds: Annotated[Integer, Field(ge=600, le=86400)] | None = None
    loading_page: LoadingPage | None = None


class Service(Compute):
    autoscaling: ServiceAutoscaling | None = None
    termination: ServiceTermination | None = None
    health_check: HealthCheck | None = None
    liveness_health_check: HealthCheck | None = None
    protocol: Literal["HTTP", "HTTP2"] | None = None
    http_port: Port | None = None
    internal_ports: list[Port] | None = None
    routes: list[Route] | None = None
    cors: CorsPolicy | None = None
    inactivity_sleep: InactivitySleep | None = None


class JobSchedule(SpecModel):
    cron: str | None = None
    time_zone: str | None = None


class Job(Compute):
    kind: JobKind | None = None
    schedule: JobSchedule | None = None
    termination: WorkerTermination | None = None
    timeout: str | None = None


class Function(Sourced):
    name: str
    source_dir: Text | None = None
    envs: list[EnvVar] | None = None
    alerts: list[AlertSpec] | None = None
    log_destinations: list[LogDestination] | None = None
    routes: list[Route] | None = None
    cors: CorsPolicy | None = None
