"""Multi-lending (多头借贷): one SME applying on many platforms, or queried by many banks, at once.

Counted over any `window_days` window containing the event, so arrival order does not matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from policies.risk.base import EventKind, Finding, History, MonitorEvent, Severity
from policies.risk.common import densest_window, evidence, loan_type, text


class MultiLendingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    window_days: int = Field(30, ge=1, le=366, description="how close together, in days")
    min_platforms: int = Field(3, ge=2, le=100, description="distinct platforms applied on")
    min_banks: int = Field(5, ge=2, le=1000, description="distinct banks that queried")
    application_severity: Severity = "high"
    query_severity: Severity = "medium"

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.window_days)


class MultiLendingRule:
    name = "multi_lending"

    def __init__(self, config: MultiLendingConfig) -> None:
        self.config = config

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        code = event.credit_code
        if code is None:
            return ()
        if loan_type(event) == "application_submitted":
            return self._spread(event, code, history, "loan", "platform", self.config.min_platforms)
        if event.kind == "query":
            return self._spread(event, code, history, "query", "bank_code", self.config.min_banks)
        return ()

    def _spread(
        self,
        event: MonitorEvent,
        code: str,
        history: History,
        kind: EventKind,
        by: str,
        minimum: int,
    ) -> Sequence[Finding]:
        span = self.config.horizon
        if text(event.attrs, by) is None:
            return ()
        candidates = history.events(
            since=event.occurred_at - span,
            until=event.occurred_at + span,
            kind=kind,
            credit_code=code,
            attr=("event_type", "application_submitted") if kind == "loan" else None,
        )
        window = densest_window(candidates, lambda e: text(e.attrs, by), event.occurred_at, span)
        if window is None or len(window.keys) < minimum:
            return ()
        days, n = self.config.window_days, len(window.keys)
        if kind == "loan":
            title, severity = f"{days}天内在{n}个平台申请贷款", self.config.application_severity
        else:
            title, severity = f"{days}天内被{n}家银行查询", self.config.query_severity
        return (
            Finding(
                rule=self.name,
                severity=severity,
                subject=f"enterprise:{code}",
                title=title,
                evidence=evidence(window.events),
                credit_code=code,
                details={
                    "platforms" if kind == "loan" else "banks": sorted(window.keys),
                    "window_days": days,
                    "since": window.since.isoformat(),
                    "until": window.until.isoformat(),
                },
            ),
        )
