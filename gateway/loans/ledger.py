"""The loan ledger's write side: what platform adapters call with each canonical event.

`store` runs inside the caller's transaction, and the caller commits before
it acknowledges the message: an acknowledged message is durable, and a
redelivery finds its first copy by (platform, message id) and changes
nothing. `store_many` does the same for a list of events (a pulled page, a
group of pushed messages) with a statement per step instead of per event,
and answers exactly what `store` would have answered for each in turn. A
loan is recomputed from all its events in occurrence order, so events
arriving out of order still give the same loan. An authorisation
becomes a consent registered by the platform (`PlatformPrincipal`) as witness.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import orjson
from sqlalchemy import Connection

from gateway.consents.principal import PlatformPrincipal, channel_of
from gateway.consents.repository import enterprise_statuses
from gateway.consents.schemas import ConsentIn
from gateway.consents.service import check_channel, check_status, create_many
from gateway.enterprises import repository as enterprise_rows
from gateway.errors import ProblemError
from gateway.loans import repository
from gateway.loans.events import BEIJING, LoanEvent, beijing_day_end
from gateway.timeutil import aware
from policies.consent import ConsentRules, Purpose

__all__ = ["Outcome", "Stored", "dead_letter", "fold", "last_occurred", "store", "store_many"]

log = logging.getLogger("xyd.loans")
Outcome = Literal["accepted", "duplicate", "rejected"]
PLATFORM_PURPOSE: Purpose = "loan_application"


@dataclass(frozen=True, slots=True)
class Stored:
    outcome: Outcome
    event_id: int | None = None
    consent_id: str | None = None
    reason: str | None = None  # why it was rejected (then dead-lettered)


def store(conn: Connection, event: LoanEvent, *, rules: ConsentRules) -> Stored:
    """Stored once; or "rejected" (dead-lettered, nothing else written): `store_many`
    of one."""
    return store_many(conn, [event], rules=rules)[0]


def _row(event: LoanEvent, now: datetime) -> dict[str, Any]:
    return {
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
    }


def _reject(conn: Connection, event: LoanEvent, exc: ProblemError) -> Stored:
    reason = f"authorisation not registered: {exc.detail}"
    # No copy of the platform's bytes here: the event as read, with their digest.
    raw = orjson.dumps(asdict(event), default=str, option=orjson.OPT_SORT_KEYS)
    dead_letter(conn, event.platform, reason, raw, once=True)
    return Stored("rejected", reason=reason)


def store_many(
    conn: Connection, events: Sequence[LoanEvent], *, rules: ConsentRules
) -> list[Stored]:
    """Each event stored once, as if one after the other, in one statement per
    step: refusals checked on one read, the new events inserted in one
    statement, the touched loans read and written whole once each, one
    data-version bump per enterprise (one for each event accepted: the report's
    loans section changed, cached reports must not outlive it), then a consent
    for each accepted authorisation. A second event of the list with the key of
    an earlier one is a duplicate, as a redelivery is."""
    now = datetime.now(UTC)
    refusals, statuses = _refusals(conn, events, rules)
    results: list[Stored | None] = list(refusals)
    first: dict[tuple[str, str], int] = {}
    for n, event in enumerate(events):
        if results[n] is None:
            first.setdefault((event.platform, event.message_id), n)
    new = repository.insert_events_once(conn, [_row(events[n], now) for n in first.values()])
    accepted: list[int] = []
    for n, event in enumerate(events):
        if results[n] is not None:
            continue
        key = (event.platform, event.message_id)
        if first[key] == n and key in new:
            accepted.append(n)
        else:
            results[n] = Stored("duplicate")
    touched = {(events[n].platform, events[n].loan_no) for n in accepted if events[n].loan_no}
    _refold_many(conn, touched, now)
    bumps = Counter(events[n].credit_code for n in accepted if events[n].credit_code)
    enterprise_rows.bump_data_versions(conn, {c: k for c, k in bumps.items() if c}, now)
    consent_ids = _consents(conn, [events[n] for n in accepted], rules, statuses)
    for n, consent_id in zip(accepted, consent_ids, strict=True):
        event = events[n]
        results[n] = Stored("accepted", new[(event.platform, event.message_id)], consent_id)
    return [r if r is not None else Stored("duplicate") for r in results]


def _refusals(
    conn: Connection, events: Sequence[LoanEvent], rules: ConsentRules
) -> tuple[list[Stored | None], dict[str, str]]:
    """For each event, its refusal or None. An authorisation through a channel
    this deployment does not accept (XYD_CONSENT_CHANNELS without `platform`),
    or for an enterprise that cannot grant a consent (not in the registry,
    deregistered), is kept as a dead letter with the reason and refused, so
    the platform hears of it in its own terms. One stored already stays a
    duplicate, whatever has changed since; an event counts as known once an
    earlier one of the list with its key was not refused. With the statuses
    read of the enterprises the authorisations name."""
    asking = [e for e in events if e.authorization is not None and e.credit_code is not None]
    if not asking:
        return [None] * len(events), {}
    known = repository.known_events(conn, {(e.platform, e.message_id) for e in asking})
    statuses = enterprise_statuses(conn, {e.credit_code for e in asking if e.credit_code})
    out: list[Stored | None] = []
    for event in events:
        key = (event.platform, event.message_id)
        refused = None
        if event.authorization is not None and event.credit_code is not None and key not in known:
            try:
                check_channel(channel_of(PlatformPrincipal(event.platform)), rules)
                check_status(event.credit_code, statuses.get(event.credit_code))
            except ProblemError as exc:
                refused = _reject(conn, event, exc)
        if refused is None:
            known.add(key)
        out.append(refused)
    return out, statuses


def _consents(
    conn: Connection, events: Sequence[LoanEvent], rules: ConsentRules, statuses: dict[str, str]
) -> list[str | None]:
    """The SME's authorisation on the platform of each event, registered with the
    platform as witness, all together (`create_many`); None where the terms give
    no consent (expired) or it was refused (a bank the gateway does not know:
    the event is kept all the same, the message was valid). `statuses`: of
    every enterprise an authorisation among `events` names, read already."""
    asked = [(event, _terms(event, rules)) for event in events]
    requests = [(PlatformPrincipal(e.platform), body) for e, body in asked if body is not None]
    made = iter(create_many(conn, requests, rules, statuses))
    ids: list[str | None] = []
    for event, body in asked:
        result = None if body is None else next(made)
        if isinstance(result, ProblemError):
            _not_registered(event, result)
            result = None
        ids.append(result)
    return ids


def _terms(event: LoanEvent, rules: ConsentRules) -> ConsentIn | None:
    auth = event.authorization
    if auth is None or event.credit_code is None:
        return None
    now = datetime.now(UTC)
    longest = now + timedelta(days=rules.purposes[PLATFORM_PURPOSE].max_days)
    until = min(beijing_day_end(auth.valid_until), longest.astimezone(BEIJING))
    if until <= now:
        log.warning("platform authorisation already expired", extra={"platform": event.platform})
        return None
    return ConsentIn.model_validate(
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


def _not_registered(event: LoanEvent, exc: ProblemError) -> None:
    log.warning(
        "platform authorisation not registered as a consent: %s",
        exc.detail,
        extra={"platform": event.platform},
    )


def dead_letter(
    conn: Connection, platform: str, reason: str, raw: bytes, *, once: bool = False
) -> bool:
    """A message that could not be parsed or was refused: kept with the reason, for
    operators. `once`: not again if the same (reason, raw) is kept already (a
    pull platform delivers its feed at least once). Whether it was written."""
    reason = reason[:2000]
    if once and repository.dead_letter_kept(conn, platform, reason, raw):
        return False
    repository.add_dead_letter(conn, platform, reason, raw)
    return True


def last_occurred(conn: Connection, platform: str) -> datetime | None:
    """When the platform's last stored event (by arrival) happened, aware."""
    last = repository.last_event_at(conn, platform)
    return None if last is None else aware(last)  # SQLite: stored UTC, read naive


class Foldable(Protocol):
    @property
    def event_type(self) -> str: ...
    @property
    def amount_fen(self) -> int | None: ...
    @property
    def days_overdue(self) -> int | None: ...


def fold(events: Sequence[Foldable]) -> dict[str, Any]:
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


def _refold_many(conn: Connection, touched: set[tuple[str, str | None]], now: datetime) -> None:
    keys = {(platform, loan_no) for platform, loan_no in touched if loan_no}
    if not keys:
        return
    by_loan = repository.events_of_loans(conn, keys)
    rows = [_loan_row(p, n, by_loan[(p, n)], now) for p, n in sorted(by_loan)]
    repository.upsert_loans(conn, rows)


def _loan_row(platform: str, loan_no: str, events: Sequence[Any], now: datetime) -> dict[str, Any]:
    state = fold([e for e in events if e.event_type != "consent_granted"])
    last = events[-1]
    return {
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
