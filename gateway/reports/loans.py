"""Platform loans as the score sees them on a day: each loan folded from its
ledger events up to that day's end (Beijing time), so a past quarter's score
sees the loan as it stood then, not as it stands now.

A loan is scored only once money went out (a disbursement); applications,
approvals and refusals are not debts. Each becomes a `ScoredRecord` of
category `loan` whose id is its citation in reasons' `evidence`,
`loan_ref(platform, loan_no)`, the same two members the report's `loans`
section shows, and whose `effective_date` is the day it ended (settled) or,
while it is still open, the day scored: so an indicator's `counts_for_days`
runs from the end of the loan, as PBOC keeps adverse records for five years
after they end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from gateway.loans.events import BEIJING
from gateway.loans.ledger import fold
from gateway.loans.service import LedgerEvent
from gateway.reports.scoring import LOAN, ScoredRecord


def loan_ref(platform: str, loan_no: str) -> str:
    """A loan as reasons cite it: unambiguous, as platform keys hold no colon."""
    return f"{platform}:{loan_no}"


def _day(at: datetime) -> date:
    return at.astimezone(BEIJING).date()


def scored_loans(events: Sequence[LedgerEvent], on: date) -> list[ScoredRecord]:
    """The enterprise's lent loans as of the end of `on`, in (platform, loan_no) order.

    `events`: `gateway.loans.service.history`, oldest first."""
    end = datetime.combine(on + timedelta(days=1), time(), BEIJING)
    by_loan: dict[tuple[str, str], list[LedgerEvent]] = {}
    for event in events:
        if event.occurred_at < end:
            by_loan.setdefault((event.platform, event.loan_no), []).append(event)
    scored = []
    for (platform, loan_no), known in sorted(by_loan.items()):
        disbursed = [e for e in known if e.event_type == "loan_disbursed"]
        if not disbursed:
            continue
        state = fold(known)
        settled = [e for e in known if e.event_type == "loan_settled"]
        ended = _day(settled[-1].occurred_at) if state["status"] == "settled" else None
        late = [e.days_overdue or 1 for e in known if e.event_type == "repayment_overdue"]
        data: dict[str, Any] = {
            "platform": platform,
            "loan_no": loan_no,
            **state,
            # A late event says at least a day late, whatever days it names.
            "max_days_overdue": max(late, default=0),
            "defaulted": any(e.event_type == "loan_defaulted" for e in known),
            "disbursed_on": _day(disbursed[0].occurred_at).isoformat(),
            "ended_on": None if ended is None else ended.isoformat(),
        }
        scored.append(
            ScoredRecord(
                id=loan_ref(platform, loan_no),
                category=LOAN,
                source_department=platform,
                effective_date=ended or on,
                data=data,
            )
        )
    return scored
