"""All SQL of consents. Works on a sync Connection inside the caller's
transaction; it never commits."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, Row, and_, insert, or_, select, text, update

from gateway.store.tables import clients, consent_events, consents, enterprises
from policies.consent import StoredConsent


def enterprise_status(conn: Connection, credit_code: str) -> str | None:
    """The enterprise's registration status; None when the registry does not know it."""
    status = conn.execute(
        select(enterprises.c.status).where(enterprises.c.credit_code == credit_code)
    ).scalar()
    return None if status is None else str(status)


# PostgreSQL: the names as one array parameter, a statement of constant text.
_STATUSES_PG = text("SELECT credit_code, status FROM enterprises WHERE credit_code = ANY(:codes)")
_BANKS_PG = text(
    "SELECT client_id, org_code FROM clients WHERE client_type = 'bank'"
    " AND (client_id = ANY(:named) OR org_code = ANY(:named))"
)


def enterprise_statuses(conn: Connection, credit_codes: Collection[str]) -> dict[str, str]:
    """`enterprise_status` of several at once; the registry's unknown ones left out."""
    codes = sorted(credit_codes)
    if conn.dialect.name == "postgresql":
        rows = conn.execute(_STATUSES_PG, {"codes": codes})
    else:
        query = select(enterprises.c.credit_code, enterprises.c.status)
        rows = conn.execute(query.where(enterprises.c.credit_code.in_(codes)))
    return {str(code): str(status) for code, status in rows if status is not None}


def bank(conn: Connection, grantee: str) -> tuple[str, str | None] | None:
    """(client id, bank code) of the bank named by either; None when none is."""
    row = conn.execute(
        select(clients.c.client_id, clients.c.org_code).where(
            clients.c.client_type == "bank",
            or_(clients.c.client_id == grantee, clients.c.org_code == grantee),
        )
    ).first()
    return None if row is None else (row.client_id, row.org_code)


def banks(conn: Connection, grantees: Collection[str]) -> dict[str, tuple[str, str | None]]:
    """`bank` of several grantees at once; those no bank answers to left out."""
    named = sorted(grantees)
    if conn.dialect.name == "postgresql":
        rows = conn.execute(_BANKS_PG, {"named": named}).all()
    else:
        rows = conn.execute(
            select(clients.c.client_id, clients.c.org_code).where(
                clients.c.client_type == "bank",
                or_(clients.c.client_id.in_(named), clients.c.org_code.in_(named)),
            )
        ).all()
    found: dict[str, tuple[str, str | None]] = {}
    for client_id, org_code in rows:
        for grantee in (client_id, org_code):
            if grantee in grantees:
                found.setdefault(grantee, (client_id, org_code))
    return found


def insert_consent(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(consents).values(**values))


def insert_consents(conn: Connection, rows: list[dict[str, Any]], at: datetime) -> None:
    """Consents, each with its `created` event by its registrant."""
    if not rows:
        return
    conn.execute(insert(consents), rows)
    events = [
        {"consent_id": r["id"], "event": "created", "actor_client_id": r["registrant_client_id"],
         "reason": None, "at": at}
        for r in rows
    ]  # fmt: skip
    conn.execute(insert(consent_events), events)


def add_event(
    conn: Connection, consent_id: str, event: str, actor: str, reason: str | None, at: datetime
) -> None:
    conn.execute(
        insert(consent_events).values(
            consent_id=consent_id, event=event, actor_client_id=actor, reason=reason, at=at
        )
    )


def mark_revoked(conn: Connection, consent_id: str, at: datetime) -> None:
    conn.execute(
        update(consents).where(consents.c.id == consent_id).values(revoked_at=at, updated_at=at)
    )


def visible(sees_all: bool, client_id: str, witness: str | None) -> ColumnElement[bool]:
    """The consents a caller may see: all of them, or those it is grantee or
    registrant of, or (a platform) those its adapter registered as `witness`."""
    if sees_all:
        return consents.c.id.is_not(None)
    mine = [consents.c.grantee_client_id == client_id, consents.c.registrant_client_id == client_id]
    if witness is not None:
        mine.append(consents.c.registrant_client_id == witness)
    return or_(*mine)


def of_enterprise(credit_code: str) -> ColumnElement[bool]:
    """The consents an enterprise's own person sees: all of its own, whatever the channel."""
    return consents.c.credit_code == credit_code


def find(conn: Connection, consent_id: str, shown: ColumnElement[bool]) -> Row[Any] | None:
    return conn.execute(select(consents).where(consents.c.id == consent_id, shown)).first()


def history(conn: Connection, consent_id: str) -> Iterable[Row[Any]]:
    """The consent's events, oldest first."""
    return conn.execute(
        select(consent_events)
        .where(consent_events.c.consent_id == consent_id)
        .order_by(consent_events.c.id)
    )


def changes(
    conn: Connection,
    shown: ColumnElement[bool],
    *,
    credit_code: str | None,
    changed_since: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to `limit` consents, oldest change first, changed after the cursor `after`
    ((updated_at, id) of the last one seen)."""
    query = select(consents).where(shown)
    if credit_code:
        query = query.where(consents.c.credit_code == credit_code)
    if changed_since:
        query = query.where(consents.c.updated_at > changed_since)
    if after:
        at, after_id = after
        query = query.where(
            or_(
                consents.c.updated_at > at,
                and_(consents.c.updated_at == at, consents.c.id > after_id),
            )
        )
    return list(conn.execute(query.order_by(consents.c.updated_at, consents.c.id).limit(limit)))


# Read for report requests (batched) on PostgreSQL, in driver-level SQL whose
# handling costs a fraction of SQLAlchemy's (measured); one array parameter
# whatever the batch size. See reports.repository.ConsentReads.
CONSENTS_PG = (
    "SELECT id, credit_code, grantee_client_id, registrant_client_id, purpose, scopes,"
    " valid_from, valid_until, revoked_at, max_daily_accesses"
    " FROM consents WHERE id = ANY(%(ids)s)"
)


def stored_many(conn: Connection, consent_ids: Collection[str]) -> dict[str, StoredConsent]:
    """Several consents in one query, by id; absent ids are left out."""
    if not consent_ids:
        return {}
    rows = conn.execute(select(consents).where(consents.c.id.in_(list(consent_ids))))
    return {row.id: stored_from_row(row) for row in rows}


class ConsentRow(Protocol):
    """A consent row's columns the policy reads, as attributes: SQLAlchemy's row, or
    psycopg's named tuple on `CONSENTS_PG` (timestamptz read aware)."""

    @property
    def id(self) -> str: ...
    @property
    def credit_code(self) -> str: ...
    @property
    def grantee_client_id(self) -> str: ...
    @property
    def registrant_client_id(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def scopes(self) -> Iterable[str]: ...
    @property
    def valid_from(self) -> datetime: ...
    @property
    def valid_until(self) -> datetime: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def max_daily_accesses(self) -> int | None: ...


def stored_from_row(row: ConsentRow) -> StoredConsent:
    """A consent row as the policy reads it."""
    return StoredConsent(
        id=row.id,
        credit_code=row.credit_code,
        grantee_client_id=row.grantee_client_id,
        registrant_client_id=row.registrant_client_id,
        purpose=row.purpose,
        scopes=frozenset(row.scopes),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        revoked=row.revoked_at is not None,
        max_daily_accesses=row.max_daily_accesses,
    )
