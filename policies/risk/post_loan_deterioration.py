"""Post-loan deterioration (贷后风险): an SME with a live loan gets a new negative record.

A loan is live at a moment when it was disbursed then (within the lookback)
and not settled before it. The rule runs both ways round, so order does not
matter: a bad record looks back for live loans, and a disbursal that arrives
late looks forward for bad records while its loan was live.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from policies.risk.base import Finding, History, MonitorEvent, Severity
from policies.risk.common import evidence, loan_key, loan_type, record_data, text, whole

Trigger = Literal["penalty", "black_list", "dishonest", "tax_rating"]
TITLES: dict[Trigger, str] = {
    "penalty": "贷后新增行政处罚",
    "black_list": "贷后列入黑名单",
    "dishonest": "贷后成为失信被执行人",
    "tax_rating": "贷后纳税信用等级降为",
}


class DeteriorationSeverities(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    penalty: Severity = "high"
    black_list: Severity = "critical"
    dishonest: Severity = "critical"
    tax_rating: Severity = "high"


class PostLoanDeteriorationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    loan_lookback_days: int = Field(1095, ge=30, le=3650, description="how old a live loan may be")
    min_fine_fen: int = Field(1_000_000, ge=0, description="a penalty this large or larger counts")
    tax_ratings: frozenset[Literal["A", "B", "M", "C", "D"]] = Field(
        frozenset({"C", "D"}), min_length=1, description="ratings that count as a fall"
    )
    severity: DeteriorationSeverities = DeteriorationSeverities()

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.loan_lookback_days)


class PostLoanDeteriorationRule:
    name = "post_loan_deterioration"

    def __init__(self, config: PostLoanDeteriorationConfig) -> None:
        self.config = config

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        if event.credit_code is None:
            return ()
        if event.kind == "record":
            finding = self._judge(event, event.credit_code, history)
            return () if finding is None else (finding,)
        if loan_type(event) == "loan_disbursed" and loan_key(event) is not None:
            later = history.events(
                since=event.occurred_at,
                until=event.occurred_at + self.config.horizon,
                kind="record",
                credit_code=event.credit_code,
            )
            found = (self._judge(r, event.credit_code, history, only=event) for r in later)
            return tuple(f for f in found if f is not None)
        return ()

    def _trigger(self, record: MonitorEvent) -> tuple[Trigger, str] | None:
        data, category = record_data(record), text(record.attrs, "category")
        if category == "penalty":
            fine = whole(data, "fine_fen")
            if fine is not None and fine >= self.config.min_fine_fen:
                return "penalty", TITLES["penalty"]
        elif category == "black_list":
            return "black_list", TITLES["black_list"]
        elif category == "judgment_debtor" and data.get("dishonest") is True:
            return "dishonest", TITLES["dishonest"]
        elif category == "tax_rating":
            rating = text(data, "rating")
            if rating in self.config.tax_ratings:
                return "tax_rating", f"{TITLES['tax_rating']} {rating}"
        return None

    def _judge(
        self, record: MonitorEvent, code: str, history: History, only: MonitorEvent | None = None
    ) -> Finding | None:
        """The finding for `record` if a loan was live when it happened (`only`: that loan)."""
        trigger = self._trigger(record)
        if trigger is None:
            return None
        live = self._live_loans(code, record.occurred_at, history)
        if only is not None:
            live = [e for e in live if loan_key(e) == loan_key(only)]
        if not live:
            return None
        kind, title = trigger
        return Finding(
            rule=self.name,
            severity=getattr(self.config.severity, kind),
            subject=f"enterprise:{code}",
            title=title,
            evidence=evidence([record, *live]),
            credit_code=code,
            details={
                "trigger": kind,
                "category": text(record.attrs, "category"),
                "record_id": text(record.attrs, "record_id"),
                "live_loans": sorted({k for e in live if (k := loan_key(e)) is not None}),
            },
        )

    def _live_loans(self, code: str, at: datetime, history: History) -> list[MonitorEvent]:
        """Disbursal events of the loans live at `at`."""
        loans = history.events(
            since=at - self.config.horizon, until=at, kind="loan", credit_code=code
        )
        settled = {
            loan_key(e) for e in loans if loan_type(e) == "loan_settled" and e.occurred_at < at
        }
        return [
            e
            for e in loans
            if loan_type(e) == "loan_disbursed"
            and loan_key(e) is not None
            and loan_key(e) not in settled
        ]
