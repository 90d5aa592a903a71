"""How a running component is checked, scaled and stopped: health checks, autoscaling, termination."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from shoal.spec.models.base import InstanceCount, Integer, Port, SpecModel


class HealthCheck(SpecModel):
    """Readiness (``health_check``) and liveness checks share this shape; ranges per the docs (§4.3)."""

    http_path: Annotated[str, Field(max_length=1024)] | None = None
    port: Port | None = None
    initial_delay_seconds: Annotated[Integer, Field(ge=0, le=3600)] | None = None
    period_seconds: Annotated[Integer, Field(ge=1, le=300)] | None = None
    timeout_seconds: Annotated[Integer, Field(ge=1, le=120)] | None = None
    success_threshold: Annotated[Integer, Field(ge=1, le=50)] | None = None
    failure_threshold: Annotated[Integer, Field(ge=1, le=50)] | None = None


class CpuMetric(SpecModel):
    percent: Annotated[Integer, Field(ge=1, le=100)] | None = None


class RequestsPerSecondMetric(SpecModel):
    per_instance: Annotated[Integer, Field(ge=1, le=2**32 - 1)] | None = None


class RequestDurationMetric(SpecModel):
    p95_milliseconds: Annotated[Integer, Field(ge=1, le=2**32 - 1)] | None = None


class WorkerMetrics(SpecModel):
    cpu: CpuMetric | None = None


class ServiceMetrics(WorkerMetrics):
    requests_per_second: RequestsPerSecondMetric | None = None
    request_duration: RequestDurationMetric | None = None


class WorkerAutoscaling(SpecModel):
    min_instance_count: InstanceCount | None = None
    max_instance_count: InstanceCount | None = None
    metrics: WorkerMetrics | None = None


class ServiceAutoscaling(WorkerAutoscaling):
    metrics: ServiceMetrics | None = None


class WorkerTermination(SpecModel):
    grace_period_seconds: Annotated[Integer, Field(ge=1, le=600)] | None = None


class ServiceTermination(WorkerTermination):
    drain_seconds: Annotated[Integer, Field(ge=1, le=110)] | None = None
