"""record disputes (异议)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_disputes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_record_disputes_record_id_records")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_disputes")),
    )
    op.create_index("ix_record_disputes_credit_code", "record_disputes", ["credit_code"])
    op.create_index("ix_record_disputes_record_id", "record_disputes", ["record_id"])


def downgrade() -> None:
    op.drop_index("ix_record_disputes_record_id", table_name="record_disputes")
    op.drop_index("ix_record_disputes_credit_code", table_name="record_disputes")
    op.drop_table("record_disputes")
