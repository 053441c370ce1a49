"""access log index: (credit_code, seq) so an enterprise's log pages newest first

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_audit_entries_credit_code_seq", "audit_entries", ["credit_code", "seq"], unique=False
    )
    op.drop_index("ix_audit_entries_credit_code", table_name="audit_entries")


def downgrade() -> None:
    op.create_index("ix_audit_entries_credit_code", "audit_entries", ["credit_code"], unique=False)
    op.drop_index("ix_audit_entries_credit_code_seq", table_name="audit_entries")
