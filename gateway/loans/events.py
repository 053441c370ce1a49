"""Canonical loan events: what every platform adapter turns its platform's messages
into, and what the ledger (`gateway.loans.ledger`) stores.

Money is integer fen, parsed by `gateway.bounds` (never above its MAX_FEN),
times are timezone-aware, and a natural-person borrower is only ever a keyed
hash of the ID number (`gateway.pii.keyed_hash` with the "person-id" purpose,
the same hash credit records use).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

EventType = Literal[
    "application_submitted",
    "consent_granted",
    "loan_approved",
    "loan_rejected",
    "loan_disbursed",
    "repayment_received",
    "repayment_overdue",
    "loan_defaulted",
    "loan_settled",
]
EVENT_TYPES: frozenset[str] = frozenset(EventType.__args__)  # type: ignore[attr-defined]

BEIJING = timezone(timedelta(hours=8))


@dataclass(frozen=True, slots=True)
class Authorization:
    """A consent the SME signed on the platform for one bank (platform as witness)."""

    bank_code: str
    scopes: tuple[str, ...]
    valid_until: date
    document_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class LoanEvent:
    platform: str
    message_id: str
    event_type: EventType
    occurred_at: datetime
    raw_sha256: str
    credit_code: str | None = None
    borrower_hash: str | None = None
    bank_code: str | None = None
    loan_no: str | None = None
    amount_fen: int | None = None
    days_overdue: int | None = None
    due_date: date | None = None
    core_enterprise_code: str | None = None
    authorization: Authorization | None = None
    # Whatever else the platform said that is worth keeping (product, term,
    # enterprise name). Never personal data.
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry its offset")
        if (self.credit_code is None) == (self.borrower_hash is None):
            raise ValueError("a borrower is a credit code or a person's hash, exactly one")


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def beijing_day_end(day: date) -> datetime:
    """The last instant of `day` in Beijing time: a platform's `validUntil` date."""
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=BEIJING)
