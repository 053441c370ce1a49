"""New-entity risk (新设主体风险): large loans to young enterprises, and one person behind many.

Both read registration facts (History.registered_on, legal_rep_hash), which
are not windowed: they are judged as known when the application is seen. A
registration record that arrives after the application does not re-judge it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field

from policies.risk.base import Finding, History, MonitorEvent, Severity
from policies.risk.common import densest_window, evidence, loan_type, local_day, whole

HASH_PREFIX = 12  # enough to tell people apart on a dashboard, too little to look one up


class NewEntityRiskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    young_months: int = Field(6, ge=1, le=60, description="registered fewer months ago is young")
    min_amount_fen: int = Field(500_000_000, ge=0, description="applications this large count")
    young_severity: Severity = "medium"
    rep_window_days: int = Field(30, ge=1, le=366, description="how close together, in days")
    min_enterprises: int = Field(3, ge=2, le=1000, description="distinct enterprises of one rep")
    rep_severity: Severity = "high"

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.rep_window_days)


def months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    # The 31st of a month with 30 days is its last day.
    for last in (31, 30, 29, 28):
        try:
            return date(year, month + 1, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has a 28th")


class NewEntityRiskRule:
    name = "new_entity_risk"

    def __init__(self, config: NewEntityRiskConfig) -> None:
        self.config = config

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        code = event.credit_code
        if code is None or loan_type(event) != "application_submitted":
            return ()
        found = [self._young(event, code, history), self._one_person(event, code, history)]
        return tuple(f for f in found if f is not None)

    def _young(self, event: MonitorEvent, code: str, history: History) -> Finding | None:
        amount = whole(event.attrs, "amount_fen")
        registered = history.registered_on(code)
        if amount is None or amount < self.config.min_amount_fen or registered is None:
            return None
        applied = local_day(event.occurred_at)
        if registered <= months_before(applied, self.config.young_months):
            return None
        return Finding(
            rule=self.name,
            severity=self.config.young_severity,
            subject=f"enterprise:{code}",
            title=f"成立不足{self.config.young_months}个月的企业申请大额贷款",
            evidence=(event.id,),
            credit_code=code,
            details={
                "registered_on": registered.isoformat(),
                "applied_on": applied.isoformat(),
                "amount_fen": amount,
            },
        )

    def _one_person(self, event: MonitorEvent, code: str, history: History) -> Finding | None:
        rep = history.legal_rep_hash(code)
        if rep is None:
            return None
        span = timedelta(days=self.config.rep_window_days)
        # The represented enterprises first, then their applications: reading every
        # application of the window and looking up each applicant's representative
        # cost a query per applicant.
        applications = [
            application
            for other in history.codes_with_rep(rep)
            for application in history.events(
                since=event.occurred_at - span,
                until=event.occurred_at + span,
                kind="loan",
                credit_code=other,
                attr=("event_type", "application_submitted"),
            )
        ]
        window = densest_window(applications, lambda e: e.credit_code, event.occurred_at, span)
        if window is None or len(window.keys) < self.config.min_enterprises:
            return None
        return Finding(
            rule=self.name,
            severity=self.config.rep_severity,
            subject=f"legal_rep:{rep[:HASH_PREFIX]}",
            title=f"同一法定代表人的{len(window.keys)}家企业在{span.days}天内申请贷款",
            evidence=evidence(window.events),
            details={
                "enterprises": sorted(window.keys),
                "window_days": span.days,
                "since": window.since.isoformat(),
            },
        )
