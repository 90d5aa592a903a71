"""The metric alert rules — CPU_UTILIZATION, MEM_UTILIZATION, RESTART_COUNT on the component's
instances (``domain.metrics``), REQUESTS_PER_SECOND, REQUEST_DURATION_P95_MS and the FUNCTIONS_* rules
on the whole component (``domain.component_metrics``) — judged every sampling round: when a rule starts to hold it fires once,
and when it stops holding a "resolved" message follows, as DigitalOcean's monitoring alerts do. An
episode lives in memory: after a restart, a rule that still holds fires again once its window has
been sampled anew.
"""

from __future__ import annotations

from shoal.domain import alerts as rules
from shoal.domain.metrics import NOUNS, THRESHOLD_RULES, UNITS, describe, holds, window_seconds
from shoal.domain.plan import AppPlan
from shoal.domain.ports import InstanceState
from shoal.engine.alerts import AlertsEngine
from shoal.engine.metrics import MetricsService


class MetricAlerts:
    def __init__(self, alerts: AlertsEngine) -> None:
        self._alerts = alerts
        self._open: dict[str, str] = {}  # alert id → the subject of the episode under way

    async def observe(self, plan: AppPlan, states: list[InstanceState], metrics: MetricsService,
                      now: float) -> None:
        for alert in rules.alerts_of(plan):
            if alert.rule in THRESHOLD_RULES and alert.component and not alert.disabled:
                await self._judge(plan, alert, metrics, now)

    async def _judge(self, plan: AppPlan, alert: rules.Alert, metrics: MetricsService, now: float) -> None:
        window = window_seconds(alert.window, metrics.window_scale)
        values = metrics.window_values(plan.app_id, alert.component, alert.rule, now - window, now)
        if not values:
            return  # nothing has run through a whole window yet
        threshold = alert.value or 0.0
        worst = min(values) if alert.operator == "LESS_THAN" else max(values)
        held = holds(alert.operator, worst, threshold)
        shown = f"{NOUNS[alert.rule]} of {alert.component}: {worst:.4g}{UNITS[alert.rule]}"
        rule_text = describe(alert.rule, alert.operator, threshold, alert.window)
        if held and alert.id not in self._open:
            subject = self._open[alert.id] = f"{plan.deployment_id}/{alert.rule}/{int(now)}"
            await self._alerts.fire(plan, alert, rules.Occurrence(alert.rule, subject, f"{shown} ({rule_text})"))
        elif not held and alert.id in self._open:
            subject = self._open.pop(alert.id)
            await self._alerts.fire(plan, alert, rules.Occurrence(
                alert.rule, f"{subject}/resolved", f"{shown} (no longer {rule_text})", resolved=True))
