"""monitor: index monitor_events by applied_at, for a worker catching up on others' batches

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_monitor_events_applied_at", "monitor_events", ["applied_at"])


def downgrade() -> None:
    op.drop_index("ix_monitor_events_applied_at", table_name="monitor_events")
