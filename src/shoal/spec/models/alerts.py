"""Alert policies (app-level and per component)."""

from __future__ import annotations

from typing import Literal

from shoal.spec.models.base import SpecModel

# The OpenAPI enum lags the product: JOB_INVOCATION_FAILED, DEPLOYMENT_STARTED and
# DEPLOYMENT_CANCELED are documented rules (do-app-platform.md §4.10).
AlertRule = Literal[
    "UNSPECIFIED_RULE",
    "CPU_UTILIZATION",
    "MEM_UTILIZATION",
    "RESTART_COUNT",
    "DEPLOYMENT_FAILED",
    "DEPLOYMENT_LIVE",
    "DEPLOYMENT_STARTED",
    "DEPLOYMENT_CANCELED",
    "DOMAIN_FAILED",
    "DOMAIN_LIVE",
    "AUTOSCALE_FAILED",
    "AUTOSCALE_SUCCEEDED",
    "FUNCTIONS_ACTIVATION_COUNT",
    "FUNCTIONS_AVERAGE_DURATION_MS",
    "FUNCTIONS_ERROR_RATE_PER_MINUTE",
    "FUNCTIONS_AVERAGE_WAIT_TIME_MS",
    "FUNCTIONS_ERROR_COUNT",
    "FUNCTIONS_GB_RATE_PER_SECOND",
    "REQUESTS_PER_SECOND",
    "REQUEST_DURATION_P95_MS",
    "JOB_INVOCATION_FAILED",
]
AlertOperator = Literal["UNSPECIFIED_OPERATOR", "GREATER_THAN", "LESS_THAN"]
AlertWindow = Literal["UNSPECIFIED_WINDOW", "FIVE_MINUTES", "TEN_MINUTES", "THIRTY_MINUTES", "ONE_HOUR"]


class AlertSpec(SpecModel):
    rule: AlertRule | None = None
    disabled: bool | None = None
    operator: AlertOperator | None = None
    value: float | None = None
    window: AlertWindow | None = None
