"""the enterprise portal: pending OpenID Connect logins and portal sessions

`portal_logins`: a login started at /portal/login, by the SHA-256 of its
`state`, bound to the browser that started it (the SHA-256 of a cookie's
token), single use, short-lived. `portal_sessions`: by the SHA-256 of the
session cookie's token; the person only as the keyed hash of their subject at
the identity provider, their enterprise and role.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "portal_logins",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("next_path", sa.String(length=1024), nullable=False),
        sa.Column("expires_at", when, nullable=False),
        sa.Column("used_at", when, nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_portal_logins")),
    )
    op.create_index("ix_portal_logins_expires_at", "portal_logins", ["expires_at"])
    op.create_table(
        "portal_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("last_seen_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_sessions")),
    )
    op.create_index("ix_portal_sessions_last_seen_at", "portal_sessions", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_portal_sessions_last_seen_at", table_name="portal_sessions")
    op.drop_table("portal_sessions")
    op.drop_index("ix_portal_logins_expires_at", table_name="portal_logins")
    op.drop_table("portal_logins")
