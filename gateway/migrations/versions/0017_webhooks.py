"""webhooks: a bank client's webhook URL, and what each consent's bank was told

`clients.webhook_url`: where the gateway POSTs a bank's signed events (null:
none). `webhook_notices`: one row per consent and sweep-made event kind
(`consent.expired` once; `enterprise.changed` with the data version last
notified), so a sweep tells each thing once whichever worker runs it. The
index on `consents.valid_until` keeps the expiry sweep off a full scan.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_url", sa.String(length=2000), nullable=True))
    op.create_table(
        "webhook_notices",
        sa.Column("consent_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("data_version", sa.BigInteger(), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consent_id"], ["consents.id"]),
        sa.PrimaryKeyConstraint("consent_id", "kind"),
    )
    op.create_index("ix_consents_valid_until", "consents", ["valid_until"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_consents_valid_until", table_name="consents")
    op.drop_table("webhook_notices")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("webhook_url")
