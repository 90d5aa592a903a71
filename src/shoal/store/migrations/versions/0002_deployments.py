"""Deployments, their logs, job invocations and alerts; deployment pointers on apps.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shoal.store.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.add_column(sa.Column("active_deployment_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("pinned_deployment_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("rollback_base_deployment_id", sa.String(36), nullable=True))
    op.create_table(
        "deployments",
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
    )
    op.create_index("ix_deployments_phase", "deployments", ["phase"])
    op.create_table(
        "deployment_logs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.String(36), sa.ForeignKey("deployments.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("component", sa.String(64), nullable=False),
        sa.Column("ts", UtcDateTime(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
    )
    op.create_index("ix_deployment_logs_dep_stage", "deployment_logs", ["deployment_id", "stage", "id"])
    op.create_table(
        "job_invocations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("deployment_id", sa.String(36), nullable=False),
        sa.Column("job_name", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("completed_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_job_invocations_app_created", "job_invocations", ["app_id", "created_at"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("component_name", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("emails", sa.JSON(), nullable=False),
        sa.Column("slack_webhooks", sa.JSON(), nullable=False),
        sa.UniqueConstraint("app_id", "component_name", "rule", name="uq_alerts_app_component_rule"),
    )


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_index("ix_job_invocations_app_created", "job_invocations")
    op.drop_table("job_invocations")
    op.drop_index("ix_deployment_logs_dep_stage", "deployment_logs")
    op.drop_table("deployment_logs")
    op.drop_index("ix_deployments_phase", "deployments")
    op.drop_table("deployments")
    with op.batch_alter_table("apps") as batch:
        batch.drop_column("rollback_base_deployment_id")
        batch.drop_column("pinned_deployment_id")
        batch.drop_column("active_deployment_id")
