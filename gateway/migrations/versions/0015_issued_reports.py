"""reports as issued: `report_cuts` (a consent cut once, by digest) and `issued_reports`

`GET /v1/reports/{report_id}` gives a bank the very bytes it was sent. Each
issued report is its request's own members and signature (a few hundred
bytes), written in the audit entry's transaction; the shared cut is written
once by its digest. See gateway/audit/kept.py. On PostgreSQL
`audit_append_keeping(batch, issued)` stores a batch's reports and appends its
audit entries (`audit_append`, 0014) in one statement.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


_CREATE = """
CREATE FUNCTION audit_append_keeping(batch json, issued json)
RETURNS TABLE (out_seq bigint, out_hash text)
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO issued_reports (report_id, client_id, credit_code, cut_sha256, own,
        signature, issued_at)
    SELECT r.report_id, r.client_id, r.credit_code, r.cut_sha256, r.own, r.signature,
        r.issued_at::timestamptz
    FROM json_to_recordset(issued) AS r(report_id text, client_id text, credit_code text,
        cut_sha256 text, own text, signature text, issued_at text);
    RETURN QUERY SELECT a.out_seq, a.out_hash FROM audit_append(batch) AS a;
END
$fn$
"""


def upgrade() -> None:
    op.create_table(
        "report_cuts",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_report_cuts")),
    )
    op.create_index("ix_report_cuts_created_at", "report_cuts", ["created_at"])
    op.create_table(
        "issued_reports",
        sa.Column("report_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("cut_sha256", sa.String(length=64), nullable=False),
        sa.Column("own", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_issued_reports")),
    )
    op.create_index("ix_issued_reports_issued_at", "issued_reports", ["issued_at"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(_CREATE)  # as written: no bind-parameter parsing of its colons


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP FUNCTION audit_append_keeping(json, json)")
    op.drop_index("ix_issued_reports_issued_at", table_name="issued_reports")
    op.drop_table("issued_reports")
    op.drop_index("ix_report_cuts_created_at", table_name="report_cuts")
    op.drop_table("report_cuts")
