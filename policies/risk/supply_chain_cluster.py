"""Supply-chain clusters (供应链风险聚集): several suppliers of one core enterprise overdue at once.

One supplier overdue is that supplier's problem; several at once usually
means the core enterprise is paying its suppliers late.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from policies.risk.base import Finding, History, MonitorEvent, Severity
from policies.risk.common import densest_window, evidence, loan_type, text


class SupplyChainClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    window_days: int = Field(30, ge=1, le=366, description="how close together, in days")
    min_suppliers: int = Field(3, ge=2, le=1000, description="distinct suppliers overdue")
    severity: Severity = "high"

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.window_days)


def _supplier(event: MonitorEvent) -> str | None:
    return event.credit_code if loan_type(event) == "repayment_overdue" else None


class SupplyChainClusterRule:
    name = "supply_chain_cluster"

    def __init__(self, config: SupplyChainClusterConfig) -> None:
        self.config = config

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        core = text(event.attrs, "core_enterprise_code")
        if core is None or _supplier(event) is None:
            return ()
        span = self.config.horizon
        candidates = history.events(
            since=event.occurred_at - span,
            until=event.occurred_at + span,
            kind="loan",
            attr=("core_enterprise_code", core),
        )
        window = densest_window(candidates, _supplier, event.occurred_at, span)
        if window is None or len(window.keys) < self.config.min_suppliers:
            return ()
        return (
            Finding(
                rule=self.name,
                severity=self.config.severity,
                subject=f"core:{core}",
                title=f"核心企业的{len(window.keys)}家供应商在{self.config.window_days}天内逾期",
                evidence=evidence(window.events),
                credit_code=core,
                details={
                    "suppliers": sorted(window.keys),
                    "window_days": self.config.window_days,
                    "since": window.since.isoformat(),
                    "until": window.until.isoformat(),
                },
            ),
        )
