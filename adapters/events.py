"""Canonical loan events: what every adapter turns its platform's messages into.

Money is integer fen, times are timezone-aware, and a natural-person borrower
is only ever a keyed hash of the ID number (`gateway.pii.keyed_hash` with the
"person-id" purpose, the same hash credit records use).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
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


class InvalidAmount(ValueError):
    """An amount that is not an exact, non-negative number of fen."""


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def fen_from_yuan(text: str, *, max_decimals: int = 2) -> int:
    """'1500000.00' yuan → 150000000 fen, exactly; more decimals or junk is an error."""
    return _scaled(text, 100, max_decimals, "yuan")


def fen_from_wan(text: str) -> int:
    """'150.000001' (units of 10,000 yuan, up to 6 decimals) → fen, exactly."""
    return _scaled(text, 1_000_000, 6, "10,000 yuan")


def _scaled(text: str, factor: int, max_decimals: int, unit: str) -> int:
    if not isinstance(text, str) or not text or len(text) > 32:
        raise InvalidAmount(f"amount in {unit} must be a decimal string")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidAmount(f"amount {text!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise InvalidAmount(f"amount {text!r} must be a non-negative number")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > max_decimals:
        raise InvalidAmount(f"amount {text!r} has more than {max_decimals} decimals")
    fen = value * factor
    if fen != fen.to_integral_value():
        raise InvalidAmount(f"amount {text!r} is not a whole number of fen")
    return int(fen)


def beijing_day_end(day: date) -> datetime:
    """The last instant of `day` in Beijing time: a platform's `validUntil` date."""
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=BEIJING)
