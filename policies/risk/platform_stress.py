"""Platform stress (平台风险): too many of a platform's recent loans overdue.

The ratio is judged over the window ending at each loan event of the
platform, by event time. A ratio is not monotonic (a late disbursal lowers
it), so a late event is judged in its own window only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from policies.risk.base import Finding, History, MonitorEvent, Severity
from policies.risk.common import evidence, loan_key, loan_type, text

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
        recent = history.events(
            since=event.occurred_at - self.config.horizon,
            until=event.occurred_at,
            kind="loan",
            attr=("platform", platform),
        )
        disbursed = {k for e in recent if loan_type(e) == "loan_disbursed" and (k := loan_key(e))}
        overdue = [e for e in recent if loan_type(e) == "repayment_overdue" and loan_key(e)]
        overdue_loans = {loan_key(e) for e in overdue}
        if len(disbursed) < self.config.min_loans:
            return ()
        ratio = len(overdue_loans) / len(disbursed)
        if ratio <= self.config.max_overdue_ratio:
            return ()
        return (
            Finding(
                rule=self.name,
                severity=self.config.severity,
                subject=f"platform:{platform}",
                title=f"平台{self.config.window_days}天逾期率 {ratio:.0%}",
                evidence=evidence(overdue),
                details={
                    "overdue_loans": len(overdue_loans),
                    "disbursed_loans": len(disbursed),
                    "ratio": round(ratio, 4),
                    "window_days": self.config.window_days,
                    "until": event.occurred_at.isoformat(),
                },
            ),
        )
