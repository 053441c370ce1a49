"""Overdue and default (逾期与违约): each loan judged by how late it is, on a configured ladder."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policies.risk.base import SEVERITIES, Finding, History, MonitorEvent, Severity
from policies.risk.common import loan_type, text, whole


class OverdueStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    days_overdue: int = Field(ge=1, le=3650, description="from this many days overdue on")
    severity: Severity


class OverdueDefaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    ladder: tuple[OverdueStep, ...] = Field(
        (
            OverdueStep(days_overdue=30, severity="medium"),
            OverdueStep(days_overdue=60, severity="high"),
            OverdueStep(days_overdue=90, severity="critical"),
        ),
        min_length=1,
        max_length=10,
    )
    default_severity: Severity = "critical"

    @field_validator("ladder")
    @classmethod
    def _ascending(cls, ladder: tuple[OverdueStep, ...]) -> tuple[OverdueStep, ...]:
        # A ladder that goes down as loans get later is a typo, not a policy.
        for lower, upper in pairwise(ladder):
            if upper.days_overdue <= lower.days_overdue:
                raise ValueError("days_overdue must increase step by step")
            if SEVERITIES.index(upper.severity) < SEVERITIES.index(lower.severity):
                raise ValueError("severity must not decrease as days_overdue grows")
        return ladder

    @property
    def horizon(self) -> timedelta:
        return timedelta(0)

    def severity_for(self, days_overdue: int) -> Severity | None:
        reached = [s.severity for s in self.ladder if days_overdue >= s.days_overdue]
        return reached[-1] if reached else None


class OverdueDefaultRule:
    name = "overdue_default"

    def __init__(self, config: OverdueDefaultConfig) -> None:
        self.config = config

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        kind = loan_type(event)
        if kind not in ("loan_defaulted", "repayment_overdue"):  # most events: nothing to read
            return ()
        platform, loan_no = text(event.attrs, "platform"), text(event.attrs, "loan_no")
        if platform is None or loan_no is None:
            return ()
        details: dict[str, object] = {"platform": platform, "loan_no": loan_no}
        if kind == "loan_defaulted":
            severity: Severity | None = self.config.default_severity
            title = "贷款违约"
        elif kind == "repayment_overdue":
            days = whole(event.attrs, "days_overdue")
            severity = None if days is None else self.config.severity_for(days)
            title, details["days_overdue"] = f"还款逾期 {days} 天", days
        else:
            return ()
        if severity is None:
            return ()
        return (
            Finding(
                rule=self.name,
                severity=severity,
                subject=f"loan:{platform}:{loan_no}",
                title=title,
                evidence=(event.id,),
                credit_code=event.credit_code,
                details=details,
            ),
        )
