"""consents: the channel a consent came through

`portal` (the enterprise's person approved it in the authorisation-code flow),
`platform:<key>` (an authorisation signed on that platform, registered by its
adapter) or `direct` (a bank's POST /v1/consents with document evidence).
Existing rows take theirs from the registrant: a platform's adapter registered
as `platform:<key>`, everything else came through the API.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=64), nullable=True))
    consents = sa.table(
        "consents", sa.column("channel", sa.String), sa.column("registrant_client_id", sa.String)
    )
    registrant = consents.c.registrant_client_id
    op.execute(
        consents.update().values(
            channel=sa.case((registrant.like("platform:%"), registrant), else_="direct")
        )
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.alter_column("channel", existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_column("channel")
