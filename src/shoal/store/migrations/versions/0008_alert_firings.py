"""Alert firings and their deliveries (email, Slack), so each rule fires once per subject; and
AUTOSCALING events.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shoal.store.tables import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_firings",
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
    )
    op.create_index("ix_alert_firings_due", "alert_firings", ["next_attempt_at"])
    op.create_index("ix_alert_firings_app", "alert_firings", ["app_id", "fired_at"])
    op.create_table(
        "autoscale_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("deployment_id", sa.String(36), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_autoscale_events_app", "autoscale_events", ["app_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_autoscale_events_app", "autoscale_events")
    op.drop_table("autoscale_events")
    op.drop_index("ix_alert_firings_app", "alert_firings")
    op.drop_index("ix_alert_firings_due", "alert_firings")
    op.drop_table("alert_firings")
