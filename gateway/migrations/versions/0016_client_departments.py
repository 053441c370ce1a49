"""clients: a department client's department (name, authority code) and its categories

A department's lines are stored as its own, whatever they say of themselves:
the records route binds them to the department its client is registered for
(config/departments.yaml names who may deliver what). Null for other clients.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("department", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("department_code", sa.String(length=18), nullable=True))
        batch_op.add_column(sa.Column("categories", json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("categories")
        batch_op.drop_column("department_code")
        batch_op.drop_column("department")
