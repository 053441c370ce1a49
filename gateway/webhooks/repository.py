"""All SQL of webhooks: a client's URL, the sweeps' candidates and what they told.
Works on a sync Connection inside the caller's transaction; it never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, insert, or_, select, update

from gateway.store.tables import clients, consents, enterprises, webhook_notices

EXPIRED = "consent.expired"
CHANGED = "enterprise.changed"


def webhook_url(conn: Connection, client_id: str) -> str | None:
    url = conn.execute(
        select(clients.c.webhook_url).where(clients.c.client_id == client_id)
    ).scalar()
    return None if url is None else str(url)


def set_webhook_url(conn: Connection, client_id: str, url: str | None) -> str | None:
    """Set (or with None clear) a client's webhook; its type, or None when no such client."""
    kind = conn.execute(
        select(clients.c.client_type).where(clients.c.client_id == client_id)
    ).scalar()
    if kind is None:
        return None
    conn.execute(update(clients).where(clients.c.client_id == client_id).values(webhook_url=url))
    return str(kind)


def _hooked() -> ColumnElement[bool]:
    return and_(
        clients.c.client_id == consents.c.grantee_client_id, clients.c.webhook_url.is_not(None)
    )


def newly_expired(conn: Connection, since: datetime, now: datetime, limit: int) -> list[Row[Any]]:
    """Consents that ran out in (since, now], unrevoked, whose bank has a webhook
    and was not yet told."""
    told = and_(webhook_notices.c.consent_id == consents.c.id, webhook_notices.c.kind == EXPIRED)
    query = (
        select(consents.c.id, consents.c.credit_code, consents.c.grantee_client_id,
               consents.c.valid_until)
        .join(clients, _hooked())
        .outerjoin(webhook_notices, told)
        .where(
            consents.c.valid_until > since,
            consents.c.valid_until <= now,
            consents.c.revoked_at.is_(None),
            webhook_notices.c.consent_id.is_(None),
        )
        .order_by(consents.c.valid_until, consents.c.id)
        .limit(limit)
    )  # fmt: skip
    return list(conn.execute(query))


def remember_expired(conn: Connection, consent_id: str, now: datetime) -> None:
    """Its primary key refuses a second row: a concurrent sweep's transaction fails."""
    conn.execute(
        insert(webhook_notices).values(consent_id=consent_id, kind=EXPIRED, notified_at=now)
    )


def changed_monitored(conn: Connection, now: datetime, limit: int) -> list[Row[Any]]:
    """Live post-loan-monitoring consents, bank with a webhook, whose enterprise's
    data version moved past the one last told (or never noted)."""
    noted = and_(webhook_notices.c.consent_id == consents.c.id, webhook_notices.c.kind == CHANGED)
    query = (
        select(consents.c.id, consents.c.credit_code, consents.c.grantee_client_id,
               enterprises.c.data_version, webhook_notices.c.data_version.label("told"))
        .join(clients, _hooked())
        .join(enterprises, enterprises.c.credit_code == consents.c.credit_code)
        .outerjoin(webhook_notices, noted)
        .where(
            consents.c.purpose == "post_loan_monitoring",
            consents.c.revoked_at.is_(None),
            consents.c.valid_from <= now,
            consents.c.valid_until > now,
            or_(
                webhook_notices.c.consent_id.is_(None),
                webhook_notices.c.data_version < enterprises.c.data_version,
            ),
        )
        .order_by(consents.c.id)
        .limit(limit)
    )  # fmt: skip
    return list(conn.execute(query))


def note_version(
    conn: Connection, consent_id: str, version: int, told: int | None, now: datetime
) -> bool:
    """Move the consent's noted version from `told` to `version`; False when another
    worker moved it first (its conditional update matched nothing)."""
    if told is None:
        conn.execute(
            insert(webhook_notices).values(
                consent_id=consent_id, kind=CHANGED, data_version=version, notified_at=now
            )
        )
        return True
    moved = conn.execute(
        update(webhook_notices)
        .where(
            webhook_notices.c.consent_id == consent_id,
            webhook_notices.c.kind == CHANGED,
            webhook_notices.c.data_version == told,
        )
        .values(data_version=version, notified_at=now)
    )
    return moved.rowcount == 1


def data_version(conn: Connection, credit_code: str) -> int | None:
    version = conn.execute(
        select(enterprises.c.data_version).where(enterprises.c.credit_code == credit_code)
    ).scalar()
    return None if version is None else int(version)
