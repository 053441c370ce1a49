"""online credit repair: applications, their evidence, and department reviewers

`repair_applications`: an enterprise's application (信用修复) for one of its
published penalties, reviewed by the department that decided it; at most one
pending per penalty (a partial unique index). The credit commitment accepted
is kept as its version, the SHA-256 of the text shown and the commitment
record written for it. `repair_evidence`: the files, in the database (bounded
by settings), with their sniffed media type, size and SHA-256.
`dashboard_users.department`: the department a `department_reviewer` reviews for.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    ident = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    with op.batch_alter_table("dashboard_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("department", sa.String(length=100), nullable=True))
    op.create_table(
        "repair_applications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("record_id", ident, nullable=False),
        sa.Column("department", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("applied_by", sa.String(length=80), nullable=False),
        sa.Column("applied_at", when, nullable=False),
        sa.Column("review_due_at", when, nullable=False),
        sa.Column("statement", sa.Text(), nullable=True),
        sa.Column("commitment_version", sa.String(length=20), nullable=False),
        sa.Column("commitment_sha256", sa.String(length=64), nullable=False),
        sa.Column("commitment_accepted_at", when, nullable=False),
        sa.Column("commitment_record_id", sa.String(length=128), nullable=False),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("decided_at", when, nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("repair_record_id", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_repair_applications_record_id_records")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_applications")),
    )
    op.create_index("ix_repair_applications_credit_code", "repair_applications", ["credit_code"])
    op.create_index(
        "ix_repair_applications_department_status",
        "repair_applications",
        ["department", "status"],
    )
    pending = sa.text("status = 'pending'")
    op.create_index(
        "uq_repair_applications_pending_record",
        "repair_applications",
        ["record_id"],
        unique=True,
        postgresql_where=pending,
        sqlite_where=pending,
    )
    op.create_table(
        "repair_evidence",
        sa.Column("id", ident, autoincrement=True, nullable=False),
        sa.Column("application_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["repair_applications.id"],
            name=op.f("fk_repair_evidence_application_id_repair_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_evidence")),
    )
    op.create_index("ix_repair_evidence_application_id", "repair_evidence", ["application_id"])


def downgrade() -> None:
    op.drop_index("ix_repair_evidence_application_id", table_name="repair_evidence")
    op.drop_table("repair_evidence")
    op.drop_index("uq_repair_applications_pending_record", table_name="repair_applications")
    op.drop_index("ix_repair_applications_department_status", table_name="repair_applications")
    op.drop_index("ix_repair_applications_credit_code", table_name="repair_applications")
    op.drop_table("repair_applications")
    with op.batch_alter_table("dashboard_users", schema=None) as batch_op:
        batch_op.drop_column("department")
