"""Storing canonical events once, folding them into loans, and platform consents.

`store` runs inside the caller's transaction, and the caller commits before
it acknowledges the message: an acknowledged message is durable, and a
redelivery finds its first copy by (platform, message id) and changes
nothing. A loan is recomputed from all its events in occurrence order, so
events arriving out of order still give the same loan.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from adapters.events import BEIJING, LoanEvent, beijing_day_end
from gateway.consents.schemas import ConsentIn
from gateway.consents.service import check_subject, witness_of
from gateway.consents.service import create as create_consent
from gateway.errors import ProblemError
from gateway.identity.tokens import Caller
from gateway.store.tables import (
    enterprises,
    loan_events,
    loans,
    platform_dead_letters,
    platform_sync_state,
)
from policies.consent import ConsentRules, Purpose

log = logging.getLogger("xyd.adapters")
Outcome = Literal["accepted", "duplicate", "rejected"]
PLATFORM_PURPOSE: Purpose = "loan_application"


@dataclass(frozen=True, slots=True)
class Stored:
    outcome: Outcome
    event_id: int | None = None
    consent_id: str | None = None
    reason: str | None = None  # why it was rejected (then dead-lettered)


def _insert_once(conn: Connection, values: dict[str, Any]) -> int | None:
    """Insert unless (platform, message_id) exists; the new id, or None for a duplicate."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(loan_events)
    elif dialect == "sqlite":
        stmt = sqlite.insert(loan_events)
    else:  # pragma: no cover - PostgreSQL and SQLite are the supported stores
        raise RuntimeError(f"unsupported database {dialect}")
    stmt = stmt.values(**values).on_conflict_do_nothing(index_elements=["platform", "message_id"])
    row = conn.execute(stmt.returning(loan_events.c.id)).first()
    return None if row is None else int(row[0])


def store(conn: Connection, event: LoanEvent, *, rules: ConsentRules) -> Stored:
    """Stored once; or "rejected" (dead-lettered, nothing else written): see `_refused`."""
    if event.authorization is not None and (refused := _refused(conn, event)) is not None:
        return refused
    now = datetime.now(UTC)
    event_id = _insert_once(
        conn,
        {
            "platform": event.platform,
            "message_id": event.message_id,
            "event_type": event.event_type,
            # SQLite keeps no offset: a +08:00 time must go in as UTC or it shifts 8 hours.
            "occurred_at": event.occurred_at.astimezone(UTC),
            "received_at": now,
            "credit_code": event.credit_code,
            "borrower_hash": event.borrower_hash,
            "bank_code": event.bank_code,
            "loan_no": event.loan_no,
            "amount_fen": event.amount_fen,
            "days_overdue": event.days_overdue,
            "due_date": event.due_date,
            "core_enterprise_code": event.core_enterprise_code,
            "raw_sha256": event.raw_sha256,
            "details": event.details,
        },
    )
    if event_id is None:
        return Stored("duplicate")
    if event.loan_no:
        refold(conn, event.platform, event.loan_no, now)
    if event.credit_code:
        # The report's loans section changed: cached reports must not outlive it.
        conn.execute(
            update(enterprises)
            .where(enterprises.c.credit_code == event.credit_code)
            .values(data_version=enterprises.c.data_version + 1, updated_at=now)
        )
    consent_id = None
    if event.authorization is not None and event.credit_code:
        consent_id = _consent(conn, event, rules)
    return Stored("accepted", event_id, consent_id)


def _refused(conn: Connection, event: LoanEvent) -> Stored | None:
    """An authorisation for an enterprise that cannot grant a consent (not in the
    registry, deregistered): kept as a dead letter with the reason, and refused,
    so the platform hears of it in its own terms. One stored already stays a
    duplicate, whatever has happened to the enterprise since.
    """
    if event.credit_code is None or _known(conn, event):
        return None
    try:
        check_subject(conn, event.credit_code)
    except ProblemError as exc:
        reason = f"authorisation not registered: {exc.detail}"
        # No copy of the platform's bytes here: the event as read, with their digest.
        raw = orjson.dumps(asdict(event), default=str, option=orjson.OPT_SORT_KEYS)
        dead_letter(conn, event.platform, reason, raw, once=True)
        return Stored("rejected", reason=reason)
    return None


def _known(conn: Connection, event: LoanEvent) -> bool:
    found = conn.execute(
        select(loan_events.c.id).where(
            loan_events.c.platform == event.platform, loan_events.c.message_id == event.message_id
        )
    ).first()
    return found is not None


def _consent(conn: Connection, event: LoanEvent, rules: ConsentRules) -> str | None:
    """The SME's authorisation on the platform, registered with the platform as witness.

    A consent never outlives its purpose's maximum, so a longer platform
    validity is shortened to it. A bank the gateway does not know gets no
    consent; the event is kept all the same (the message was valid).
    """
    auth = event.authorization
    if auth is None or event.credit_code is None:
        return None
    now = datetime.now(UTC)
    longest = now + timedelta(days=rules.purposes[PLATFORM_PURPOSE].max_days)
    until = min(beijing_day_end(auth.valid_until), longest.astimezone(BEIJING))
    if until <= now:
        log.warning("platform authorisation already expired", extra={"platform": event.platform})
        return None
    body = ConsentIn.model_validate(
        {
            "credit_code": event.credit_code,
            "grantee": auth.bank_code,
            "purpose": PLATFORM_PURPOSE,
            "scopes": [s for s in auth.scopes if s in rules.sections] or ["basic"],
            "valid_until": until,
            "evidence": {
                "document_sha256": auth.document_sha256 or event.raw_sha256,
                "signer": f"{event.platform} platform",
                "channel": event.platform,
            },
        }
    )
    witness = Caller(
        client_id=witness_of(event.platform),
        client_type="platform",
        org_code=event.platform,
        scopes=frozenset({"consents:write"}),
        jti="",
        expires_at=0,
        jkt=None,
    )
    try:
        with conn.begin_nested():
            consent = create_consent(conn, witness, body, rules)
    except ProblemError as exc:
        log.warning(
            "platform authorisation not registered as a consent: %s",
            exc.detail,
            extra={"platform": event.platform},
        )
        return None
    return str(consent["id"])


# --- the loan ledger -----------------------------------------------------------


def fold(events: Sequence[Any]) -> dict[str, Any]:
    """A loan's state from its events, oldest first."""
    status, amount, outstanding, days = "applied", None, 0, 0
    for e in events:
        kind = e.event_type
        if kind in ("application_submitted", "loan_approved") and e.amount_fen is not None:
            amount = e.amount_fen
        if kind == "loan_approved":
            status = "approved"
        elif kind == "loan_rejected":
            status = "rejected"
        elif kind == "loan_disbursed":
            amount = e.amount_fen if e.amount_fen is not None else amount
            status, outstanding, days = "disbursed", amount or 0, 0
        elif kind == "repayment_received":
            outstanding = max(0, outstanding - (e.amount_fen or 0))
            if status == "overdue":
                status = "disbursed"
            days = 0
        elif kind == "repayment_overdue":
            if status not in ("defaulted", "settled"):
                status = "overdue"
            days = e.days_overdue or 0
        elif kind == "loan_defaulted":
            status = "defaulted"
        elif kind == "loan_settled":
            status, outstanding, days = "settled", 0, 0
    return {
        "status": status,
        "amount_fen": amount,
        "outstanding_fen": outstanding,
        "days_overdue": days,
    }


def refold(conn: Connection, platform: str, loan_no: str, now: datetime) -> None:
    events = list(
        conn.execute(
            select(loan_events)
            .where(loan_events.c.platform == platform, loan_events.c.loan_no == loan_no)
            .order_by(loan_events.c.occurred_at, loan_events.c.id)
        )
    )
    state = fold([e for e in events if e.event_type != "consent_granted"])
    last = events[-1]
    row = {
        "platform": platform,
        "loan_no": loan_no,
        "credit_code": next((e.credit_code for e in events if e.credit_code), None),
        "borrower_hash": next((e.borrower_hash for e in events if e.borrower_hash), None),
        "bank_code": next((e.bank_code for e in reversed(events) if e.bank_code), None),
        "core_enterprise_code": next(
            (e.core_enterprise_code for e in events if e.core_enterprise_code), None
        ),
        "first_event_at": events[0].occurred_at,
        "last_event_at": last.occurred_at,
        "updated_at": now,
        **state,
    }
    # Delete and insert in one transaction: portable, and the row is small.
    conn.execute(delete(loans).where(loans.c.platform == platform, loans.c.loan_no == loan_no))
    conn.execute(insert(loans).values(**row))


# --- dead letters and pull positions ---------------------------------------------


def dead_letter(
    conn: Connection, platform: str, reason: str, raw: bytes, *, once: bool = False
) -> bool:
    """A message that could not be parsed or was refused: kept with the reason, for
    operators. `once`: not again if the same (reason, raw) is kept already (a
    pull platform delivers its feed at least once). Whether it was written."""
    reason = reason[:2000]
    if once:
        known = conn.execute(
            select(platform_dead_letters.c.id).where(
                platform_dead_letters.c.platform == platform,
                platform_dead_letters.c.reason == reason,
                platform_dead_letters.c.raw == raw,
            )
        ).first()
        if known is not None:
            return False
    conn.execute(
        insert(platform_dead_letters).values(
            platform=platform, reason=reason, raw=raw, received_at=datetime.now(UTC)
        )
    )
    return True


def get_state(conn: Connection, platform: str, name: str) -> str | None:
    return conn.execute(
        select(platform_sync_state.c.value).where(
            platform_sync_state.c.platform == platform, platform_sync_state.c.name == name
        )
    ).scalar()


def set_state(conn: Connection, platform: str, name: str, value: str) -> None:
    """Commit with the events it covers: a crash in between loses and doubles nothing.

    An upsert, so two syncs racing (the schedule in two workers, or the CLI)
    never fail on the key; the later commit's position wins, and the events
    either covered are deduplicated anyway.
    """
    values = {"platform": platform, "name": name, "value": value, "updated_at": datetime.now(UTC)}
    stmt: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(
        platform_sync_state
    )
    conn.execute(
        stmt.values(**values).on_conflict_do_update(
            index_elements=["platform", "name"],
            set_={"value": value, "updated_at": values["updated_at"]},
        )
    )
