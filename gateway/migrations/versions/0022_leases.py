"""leases: work that must run once across hosts, and checkpoints exported once

`leases`: one row per piece of once-only work (a pull platform's schedule, the
outbox, the sweeps, the audit export), held by one process until `expires_at`;
`token` grows on every take-over and fences the holder's writes.
`audit_checkpoints.exported_at`: when the export lease's holder handed the
checkpoint to the witness (NULL: not yet). Checkpoints already stored were
exported by each process's own sealer before this revision, so they count as
exported now.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", when, nullable=False),
        sa.Column("renewed_at", when, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exported_at", when, nullable=True))
    op.execute("UPDATE audit_checkpoints SET exported_at = CURRENT_TIMESTAMP")
    op.create_index(
        "ix_audit_checkpoints_unexported",
        "audit_checkpoints",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("exported_at IS NULL"),
        sqlite_where=sa.text("exported_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_audit_checkpoints_unexported", table_name="audit_checkpoints")
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_column("exported_at")
    op.drop_table("leases")
