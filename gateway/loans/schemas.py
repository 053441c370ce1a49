"""What GET /v1/loans answers (documentation; see gateway/apidocs.py). The
members are `service._PUBLIC`'s columns and `borrower`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from gateway.apidocs import Doc

LoanStatus = Literal[
    "applied", "approved", "rejected", "disbursed", "overdue", "defaulted", "settled"
]


class Loan(Doc):
    platform: str
    loan_no: str
    credit_code: str | None = Field(description="Null for a natural person's loan")
    bank_code: str | None
    status: LoanStatus
    amount_fen: int | None
    outstanding_fen: int
    days_overdue: int
    core_enterprise_code: str | None
    first_event_at: datetime
    last_event_at: datetime
    borrower: Literal["enterprise", "natural_person"] = Field(
        description="A natural person's loan names no one"
    )


class LoanPage(Doc):
    items: list[Loan]
    next_cursor: str | None = Field(description="Pass back as `cursor`; null on the last page")
