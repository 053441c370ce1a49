"""credit store

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enterprises",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("entity_type", sa.String(length=40), nullable=False),
        sa.Column("division_code", sa.String(length=6), nullable=False),
        sa.Column("legal_rep_hash", sa.String(length=64), nullable=True),
        sa.Column("legal_rep_masked", sa.String(length=64), nullable=True),
        sa.Column("registered_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("registered_capital_fen", sa.BigInteger(), nullable=True),
        sa.Column("industry_code", sa.String(length=8), nullable=True),
        sa.Column("data_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprises")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_enterprises_credit_code")),
    )
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.create_index("ix_enterprises_legal_rep_hash", ["legal_rep_hash"], unique=False)

    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("duplicate", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("complete", sa.Boolean(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_runs")),
    )
    op.create_table(
        "records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("source_department", sa.String(length=100), nullable=False),
        sa.Column("source_record_id", sa.String(length=128), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("subject_kind", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records")),
        sa.UniqueConstraint(
            "category",
            "source_department",
            "source_record_id",
            name=op.f("uq_records_category_source_department_source_record_id"),
        ),
    )
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_records_credit_code_category", ["credit_code", "category"], unique=False
        )

    op.create_table(
        "record_versions",
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingest_batch", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_record_versions_record_id_records")
        ),
        sa.PrimaryKeyConstraint("record_id", "version", name=op.f("pk_record_versions")),
    )
    op.create_table(
        "license_details",
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("party_category", sa.String(length=20), nullable=False),
        sa.Column("document_name", sa.String(length=200), nullable=True),
        sa.Column("document_number", sa.String(length=128), nullable=False),
        sa.Column("license_category", sa.String(length=10), nullable=False),
        sa.Column("certificate_name", sa.String(length=200), nullable=True),
        sa.Column("certificate_number", sa.String(length=128), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("authority_code", sa.String(length=18), nullable=True),
        sa.Column("source_department_code", sa.String(length=18), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id", "version"],
            ["record_versions.record_id", "record_versions.version"],
            name=op.f("fk_license_details_record_id_record_versions"),
        ),
        sa.PrimaryKeyConstraint("record_id", "version", name=op.f("pk_license_details")),
    )
    op.create_table(
        "penalty_details",
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("party_category", sa.String(length=20), nullable=False),
        sa.Column("decision_number", sa.String(length=128), nullable=False),
        sa.Column("violation_type", sa.String(length=200), nullable=True),
        sa.Column("facts", sa.Text(), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column(
            "penalty_types",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("fine_fen", sa.BigInteger(), nullable=False),
        sa.Column("confiscation_fen", sa.BigInteger(), nullable=False),
        sa.Column("affected_license", sa.String(length=200), nullable=True),
        sa.Column("procedure", sa.String(length=10), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=True),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("publication_until", sa.Date(), nullable=True),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("authority_code", sa.String(length=18), nullable=True),
        sa.Column("source_department_code", sa.String(length=18), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id", "version"],
            ["record_versions.record_id", "record_versions.version"],
            name=op.f("fk_penalty_details_record_id_record_versions"),
        ),
        sa.PrimaryKeyConstraint("record_id", "version", name=op.f("pk_penalty_details")),
    )


def downgrade() -> None:
    op.drop_table("penalty_details")
    op.drop_table("license_details")
    op.drop_table("record_versions")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_credit_code_category")

    op.drop_table("records")
    op.drop_table("ingest_runs")
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.drop_index("ix_enterprises_legal_rep_hash")

    op.drop_table("enterprises")
