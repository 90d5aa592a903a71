"""Table definitions (SQLAlchemy Core). Alembic migrations create and upgrade them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes on both SQLite (which has no time zones) and PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("email", sa.String(255), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(36), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.JSON(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
)

apps = sa.Table(
    "apps",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(36), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("spec", sa.JSON(), nullable=False),
    sa.Column("region", sa.String(16), nullable=False),
    sa.Column("ingress_host", sa.String(255), nullable=False),
    sa.Column("tier_slug", sa.String(32), nullable=False),
    sa.Column("project_id", sa.String(36), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("last_deployment_created_at", UtcDateTime(), nullable=True),
    sa.Column("last_deployment_active_at", UtcDateTime(), nullable=True),
    sa.Column("active_deployment_id", sa.String(36), nullable=True),
    sa.Column("pinned_deployment_id", sa.String(36), nullable=True),
    sa.Column("rollback_base_deployment_id", sa.String(36), nullable=True),
    sa.Column("revision", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("build_config", sa.JSON(), nullable=True),  # build_config.cnb_versioning pins (0007)
    sa.UniqueConstraint("account_id", "name", name="uq_apps_account_name"),
    sa.Index("ix_apps_account_created", "account_id", "created_at", "id"),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    sa.Column("account_id", sa.String(36), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("spec", sa.JSON(), nullable=False),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Column("phase_last_updated_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("cause", sa.Text(), nullable=False),
    sa.Column("cause_details", sa.JSON(), nullable=False),
    sa.Column("progress", sa.JSON(), nullable=False),
    sa.Column("components", sa.JSON(), nullable=False),
    sa.Column("previous_deployment_id", sa.String(36), nullable=True),
    sa.Column("cloned_from", sa.String(36), nullable=True),
    sa.Column("force_build", sa.Boolean(), nullable=False),
    sa.Column("restart_components", sa.JSON(), nullable=True),
    sa.Column("timing", sa.JSON(), nullable=False),
    sa.Column("tier_slug", sa.String(32), nullable=False),
    sa.Column("ended_reason", sa.JSON(), nullable=True),
    sa.UniqueConstraint("app_id", "seq", name="uq_deployments_app_seq"),
    sa.Index("ix_deployments_phase", "phase"),
)

deployment_logs = sa.Table(
    "deployment_logs",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.String(36), sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("component", sa.String(64), nullable=False),
    sa.Column("ts", UtcDateTime(), nullable=False),
    sa.Column("line", sa.Text(), nullable=False),
    sa.Index("ix_deployment_logs_dep_stage", "deployment_id", "stage", "id"),
)

job_invocations = sa.Table(
    "job_invocations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    sa.Column("deployment_id", sa.String(36), nullable=False),
    sa.Column("job_name", sa.String(64), nullable=False),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Column("trigger", sa.JSON(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=True),
    sa.Column("completed_at", UtcDateTime(), nullable=True),
    sa.Index("ix_job_invocations_app_created", "app_id", "created_at"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    sa.Column("component_name", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("spec", sa.JSON(), nullable=False),
    sa.Column("emails", sa.JSON(), nullable=False),
    sa.Column("slack_webhooks", sa.JSON(), nullable=False),
    sa.UniqueConstraint("app_id", "component_name", "rule", name="uq_alerts_app_component_rule"),
)

clusters = sa.Table(
    "clusters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("engine", sa.String(16), nullable=False),
    sa.Column("sealed_url", sa.Text(), nullable=False),  # EV[...]: the URL carries a password
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# What the ingress served, per UTC day: flushed from the in-memory TrafficMeter every few seconds
# by adding to these rows (see store/traffic.py). Byte counts outgrow 32 bits, hence BigInteger.
app_bandwidth_daily = sa.Table(
    "app_bandwidth_daily",
    metadata,
    sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("bytes_out", sa.BigInteger(), nullable=False),
)

component_traffic_daily = sa.Table(
    "component_traffic_daily",
    metadata,
    sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("component", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("requests", sa.BigInteger(), nullable=False),
    sa.Column("errors", sa.BigInteger(), nullable=False),
    sa.Column("bytes_out", sa.BigInteger(), nullable=False),
    sa.Column("seconds", sa.Float(), nullable=False),
)

# What alerts fired and how their deliveries went (engine/alerts.py). ``id`` is derived from the
# alert and the subject (a deployment, or a deployment's domain), which is what makes a rule fire
# once per subject; ``next_attempt_at`` is set while a delivery is still to be attempted.
alert_firings = sa.Table(
    "alert_firings",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("alert_id", sa.String(36), nullable=False),
    sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    sa.Column("component_name", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("fired_at", UtcDateTime(), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("deliveries", sa.JSON(), nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
    sa.Index("ix_alert_firings_due", "next_attempt_at"),
    sa.Index("ix_alert_firings_app", "app_id", "fired_at"),
)

# AUTOSCALING events (engine/autoscaler.py): what was scaled, from and to how many, and why.
autoscale_events = sa.Table(
    "autoscale_events",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    sa.Column("deployment_id", sa.String(36), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Column("components", sa.JSON(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Index("ix_autoscale_events_app", "app_id", "created_at"),
)
