"""The loan ledger's SQL: events stored once, loans rewritten from their events,
dead letters, and the read side (an enterprise's loans and events, a page of
loans). Everything runs on the caller's Connection, in its transaction."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Row,
    Table,
    and_,
    insert,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.tables import loan_events, loans, platform_dead_letters

# Rows per multi-row statement: SQLite takes at most 32,766 parameters, a row here is 16.
CHUNK = 500
Key = tuple[str, str]  # (platform, message id) of an event, (platform, loan number) of a loan


def _upsert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover


# The rows as one JSON parameter: a short statement, parsed and planned alike
# for every page, where a multi-row VALUES is a new one each time.
_INSERT_PG = text(
    """
    INSERT INTO loan_events (platform, message_id, event_type, occurred_at, received_at,
        credit_code, borrower_hash, bank_code, loan_no, amount_fen, days_overdue, due_date,
        core_enterprise_code, raw_sha256, details)
    SELECT e.platform, e.message_id, e.event_type, e.occurred_at, e.received_at,
        e.credit_code, e.borrower_hash, e.bank_code, e.loan_no, e.amount_fen, e.days_overdue,
        e.due_date, e.core_enterprise_code, e.raw_sha256, e.details
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS e(platform text, message_id text,
        event_type text, occurred_at timestamptz, received_at timestamptz, credit_code text,
        borrower_hash text, bank_code text, loan_no text, amount_fen bigint,
        days_overdue integer, due_date date, core_enterprise_code text, raw_sha256 text,
        details jsonb)
    ON CONFLICT (platform, message_id) DO NOTHING
    RETURNING id, platform, message_id
    """
)


def insert_events_once(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> dict[Key, int]:
    """Each row inserted unless its (platform, message_id) exists, ids given in the
    rows' order; the new ids by (platform, message_id). The rows' keys are distinct.

    On PostgreSQL the rows go as one JSON document; elsewhere as one statement
    compiled once and sent as SQLAlchemy's "insertmanyvalues" batches."""
    if not rows:
        return {}
    if conn.dialect.name == "postgresql":
        inserted = conn.execute(_INSERT_PG, {"rows": _json([dict(r) for r in rows])})
    else:
        stmt = _upsert(conn, loan_events).on_conflict_do_nothing(
            index_elements=["platform", "message_id"]
        )
        columns = (loan_events.c.id, loan_events.c.platform, loan_events.c.message_id)
        inserted = conn.execute(stmt.returning(*columns), list(rows))
    return {(p, m): int(i) for i, p, m in inserted}


def _json(value: object) -> str:
    # orjson writes aware datetimes and dates as ISO 8601 itself.
    return orjson.dumps(value).decode()


# PostgreSQL: the keys as one JSON parameter, so each statement's text is the
# same for every page and group (parsed once by psycopg, planned alike).
_KNOWN_PG = text(
    """
    SELECT platform, message_id FROM loan_events WHERE (platform, message_id) IN
        (SELECT k->>0, k->>1 FROM jsonb_array_elements(CAST(:keys AS jsonb)) AS k)
    """
)
_EVENTS_OF_LOANS_PG = text(
    """
    SELECT id, platform, loan_no, event_type, occurred_at, credit_code, borrower_hash,
        bank_code, amount_fen, days_overdue, core_enterprise_code
    FROM loan_events WHERE (platform, loan_no) IN
        (SELECT k->>0, k->>1 FROM jsonb_array_elements(CAST(:keys AS jsonb)) AS k)
    ORDER BY occurred_at, id
    """
)
_UPSERT_LOANS_PG = text(
    """
    INSERT INTO loans (platform, loan_no, credit_code, borrower_hash, bank_code, status,
        amount_fen, outstanding_fen, days_overdue, core_enterprise_code, first_event_at,
        last_event_at, updated_at)
    SELECT l.platform, l.loan_no, l.credit_code, l.borrower_hash, l.bank_code, l.status,
        l.amount_fen, l.outstanding_fen, l.days_overdue, l.core_enterprise_code,
        l.first_event_at, l.last_event_at, l.updated_at
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS l(platform text, loan_no text,
        credit_code text, borrower_hash text, bank_code text, status text, amount_fen bigint,
        outstanding_fen bigint, days_overdue integer, core_enterprise_code text,
        first_event_at timestamptz, last_event_at timestamptz, updated_at timestamptz)
    ON CONFLICT (platform, loan_no) DO UPDATE SET credit_code = EXCLUDED.credit_code,
        borrower_hash = EXCLUDED.borrower_hash, bank_code = EXCLUDED.bank_code,
        status = EXCLUDED.status, amount_fen = EXCLUDED.amount_fen,
        outstanding_fen = EXCLUDED.outstanding_fen, days_overdue = EXCLUDED.days_overdue,
        core_enterprise_code = EXCLUDED.core_enterprise_code,
        first_event_at = EXCLUDED.first_event_at, last_event_at = EXCLUDED.last_event_at,
        updated_at = EXCLUDED.updated_at
    """
)


def known_events(conn: Connection, keys: Collection[Key]) -> set[Key]:
    """Which of these (platform, message_id) are stored already."""
    ordered = sorted(keys)
    if conn.dialect.name == "postgresql":
        return {(p, m) for p, m in conn.execute(_KNOWN_PG, {"keys": _json(ordered)})}
    found: set[Key] = set()
    pair = tuple_(loan_events.c.platform, loan_events.c.message_id)
    for start in range(0, len(ordered), CHUNK):
        query = select(loan_events.c.platform, loan_events.c.message_id).where(
            pair.in_(ordered[start : start + CHUNK])
        )
        found.update((p, m) for p, m in conn.execute(query))
    return found


# What folding a loan reads of its events (not their details: a JSON document each).
_FOLDED = (
    loan_events.c.id, loan_events.c.platform, loan_events.c.loan_no, loan_events.c.event_type,
    loan_events.c.occurred_at, loan_events.c.credit_code, loan_events.c.borrower_hash,
    loan_events.c.bank_code, loan_events.c.amount_fen, loan_events.c.days_overdue,
    loan_events.c.core_enterprise_code,
)  # fmt: skip
_FOLDED_PG = _EVENTS_OF_LOANS_PG.columns(*_FOLDED)


def events_of_loans(conn: Connection, keys: Collection[Key]) -> dict[Key, list[Row[Any]]]:
    """Each loan's events in the order they fold (occurrence, then arrival), in one
    read: the columns folding reads."""
    ordered = sorted(keys)
    if conn.dialect.name == "postgresql":
        rows = list(conn.execute(_FOLDED_PG, {"keys": _json(ordered)}))
    else:
        pair = tuple_(loan_events.c.platform, loan_events.c.loan_no)
        order = (loan_events.c.occurred_at, loan_events.c.id)
        rows = [
            row
            for start in range(0, len(ordered), CHUNK)
            for row in conn.execute(
                select(*_FOLDED).where(pair.in_(ordered[start : start + CHUNK])).order_by(*order)
            )
        ]
        rows.sort(key=lambda r: (r.occurred_at, r.id))  # across chunks too
    by_loan: dict[Key, list[Row[Any]]] = {}
    for row in rows:
        by_loan.setdefault((row.platform, row.loan_no), []).append(row)
    return by_loan


def upsert_loans(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Each loan row written whole, new or not, in key order so two writers lock
    the same rows in the same order. An upsert, not a delete and an insert: two
    transactions writing the same new loan at once would both insert it."""
    if not rows:
        return
    ordered = sorted(rows, key=lambda r: (r["platform"], r["loan_no"]))
    if conn.dialect.name == "postgresql":
        conn.execute(_UPSERT_LOANS_PG, {"rows": _json([dict(r) for r in ordered])})
        return
    stmt = _upsert(conn, loans)
    kept = {c.name: stmt.excluded[c.name] for c in loans.c if not c.primary_key}
    stmt = stmt.on_conflict_do_update(index_elements=["platform", "loan_no"], set_=kept)
    conn.execute(stmt, ordered)


def last_event_at(conn: Connection, platform: str) -> datetime | None:
    """When the platform's last stored event (by arrival) happened."""
    last: datetime | None = conn.execute(
        select(loan_events.c.occurred_at)
        .where(loan_events.c.platform == platform)
        .order_by(loan_events.c.id.desc())
        .limit(1)
    ).scalar()
    return last


def dead_letter_kept(conn: Connection, platform: str, reason: str, raw: bytes) -> bool:
    known = conn.execute(
        select(platform_dead_letters.c.id).where(
            platform_dead_letters.c.platform == platform,
            platform_dead_letters.c.reason == reason,
            platform_dead_letters.c.raw == raw,
        )
    ).first()
    return known is not None


def add_dead_letter(conn: Connection, platform: str, reason: str, raw: bytes) -> None:
    conn.execute(
        insert(platform_dead_letters).values(
            platform=platform, reason=reason, raw=raw, received_at=datetime.now(UTC)
        )
    )


# What a reader of the ledger is shown of a loan.
_PUBLIC = (
    loans.c.platform, loans.c.loan_no, loans.c.credit_code, loans.c.bank_code, loans.c.status,
    loans.c.amount_fen, loans.c.outstanding_fen, loans.c.days_overdue,
    loans.c.core_enterprise_code, loans.c.first_event_at, loans.c.last_event_at,
)  # fmt: skip


def loans_of(conn: Connection, credit_code: str) -> list[Row[Any]]:
    """The enterprise's loans, the first lent first."""
    return list(
        conn.execute(
            select(*_PUBLIC)
            .where(loans.c.credit_code == credit_code)
            .order_by(loans.c.first_event_at, loans.c.platform, loans.c.loan_no)
        )
    )


_HISTORY = (
    select(
        loan_events.c.platform, loan_events.c.loan_no, loan_events.c.event_type,
        loan_events.c.occurred_at, loan_events.c.amount_fen, loan_events.c.days_overdue,
    )
    .where(loan_events.c.loan_no.is_not(None), loan_events.c.event_type != "consent_granted")
    .order_by(loan_events.c.occurred_at, loan_events.c.id)
)  # fmt: skip


def events_of(conn: Connection, credit_code: str) -> list[Row[Any]]:
    """Every event of the enterprise's loans in the order they fold. Every event
    names its borrower (`gateway.loans.events.LoanEvent`), so one indexed read."""
    return list(conn.execute(_HISTORY.where(loan_events.c.credit_code == credit_code)))


def loans_page(
    conn: Connection,
    *,
    credit_code: str | None,
    platform: str | None,
    status: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to `limit` loans by (platform, loan number), those after `after` only."""
    query = select(*_PUBLIC)
    if credit_code:
        query = query.where(loans.c.credit_code == credit_code)
    if platform:
        query = query.where(loans.c.platform == platform)
    if status:
        query = query.where(loans.c.status == status)
    if after is not None:
        after_platform, after_loan = after
        query = query.where(
            or_(
                loans.c.platform > after_platform,
                and_(loans.c.platform == after_platform, loans.c.loan_no > after_loan),
            )
        )
    return list(conn.execute(query.order_by(loans.c.platform, loans.c.loan_no).limit(limit)))
