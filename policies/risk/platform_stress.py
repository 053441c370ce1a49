"""Platform stress (平台风险): too many of a platform's recent loans overdue.

The ratio is judged over the window ending at each loan event of the
platform, by event time. A ratio is not monotonic (a late disbursal lowers
it), so a late event is judged in its own window only. Loans are counted
with `History.tally`: a busy platform's window holds thousands of events,
and walking them on every one of its events is what made the rule slow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from policies.risk.base import Finding, History, MonitorEvent, Severity, Tally
from policies.risk.common import MAX_EVIDENCE, loan_type, text

COUNTED = ("loan_disbursed", "repayment_overdue")


class PlatformStressConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    window_days: int = Field(30, ge=1, le=366, description="loans counted over this")
    min_loans: int = Field(20, ge=1, le=1_000_000, description="fewer disbursed is no ratio")
    max_overdue_ratio: float = Field(0.15, gt=0, le=1, description="above this is stress")
    severity: Severity = "high"

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.window_days)


class PlatformStressRule:
    name = "platform_stress"

    def __init__(self, config: PlatformStressConfig) -> None:
        self.config = config

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        platform = text(event.attrs, "platform")
        if platform is None or loan_type(event) not in COUNTED:
            return ()

        since = event.occurred_at - self.config.horizon

        def loans(event_type: str) -> Tally:
            # Distinct loan numbers of one platform are distinct loans (`loan_key`).
            return history.tally(
                since=since,
                until=event.occurred_at,
                kind="loan",
                attrs={"platform": platform, "event_type": event_type},
                by="loan_no",
                limit=MAX_EVIDENCE,
            )

        disbursed = loans("loan_disbursed")
        if disbursed.keys < self.config.min_loans:
            return ()
        overdue = loans("repayment_overdue")
        ratio = overdue.keys / disbursed.keys
        if ratio <= self.config.max_overdue_ratio:
            return ()
        return (
            Finding(
                rule=self.name,
                severity=self.config.severity,
                subject=f"platform:{platform}",
                title=f"平台{self.config.window_days}天逾期率 {ratio:.0%}",
                evidence=overdue.ids,
                details={
                    "overdue_loans": overdue.keys,
                    "disbursed_loans": disbursed.keys,
                    "ratio": round(ratio, 4),
                    "window_days": self.config.window_days,
                    "until": event.occurred_at.isoformat(),
                },
            ),
        )
