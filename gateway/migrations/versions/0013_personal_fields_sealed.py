"""records: personal fields sealed (AES-GCM, versioned keys) beside each record version

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("record_versions") as batch:
        batch.add_column(sa.Column("personal", sa.Text(), nullable=True))
        batch.add_column(sa.Column("personal_key_version", sa.Integer(), nullable=True))
    sealed = sa.text("personal_key_version IS NOT NULL")
    op.create_index(
        "ix_record_versions_personal_key_version",
        "record_versions",
        ["personal_key_version"],
        postgresql_where=sealed,
        sqlite_where=sealed,
    )


def downgrade() -> None:
    op.drop_index("ix_record_versions_personal_key_version", table_name="record_versions")
    with op.batch_alter_table("record_versions") as batch:
        batch.drop_column("personal_key_version")
        batch.drop_column("personal")
