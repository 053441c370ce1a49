"""Query abuse (查询滥用): a bank refused consent again and again, or querying far above its habit.

Denials are counted per client in any `denial_window_hours` window. A spike
compares the queries of the window ending at a query with the client's own
average over the `baseline_days` before that window; a brand-new client has
an average of zero, so `min_spike_queries` is what keeps its first few
queries from being a spike. Unlike the counts, the spike is not monotonic: a
baseline query that arrives late can only lower the ratio, and does not
withdraw a finding already made.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from policies.risk.base import Finding, History, MonitorEvent, Severity
from policies.risk.common import densest_window, evidence, text


class QueryAbuseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    denial_window_hours: int = Field(1, ge=1, le=168, description="denials counted over this")
    min_denials: int = Field(5, ge=2, le=10_000, description="this many denials is abuse")
    denial_severity: Severity = "high"
    spike_window_hours: int = Field(1, ge=1, le=24, description="recent queries counted over this")
    baseline_days: int = Field(7, ge=1, le=90, description="the habit: average over these days")
    spike_factor: float = Field(5.0, gt=1, le=1000, description="recent over average above this")
    min_spike_queries: int = Field(20, ge=2, le=1_000_000, description="fewer is never a spike")
    spike_severity: Severity = "medium"

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.baseline_days, hours=self.spike_window_hours)


class QueryAbuseRule:
    name = "query_abuse"

    def __init__(self, config: QueryAbuseConfig) -> None:
        self.config = config

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        client_id = text(event.attrs, "client_id")
        if client_id is None:
            return ()
        if event.kind == "consent_denied":
            return self._denials(event, client_id, history)
        if event.kind == "query":
            return self._spike(event, client_id, history)
        return ()

    def _denials(self, event: MonitorEvent, client_id: str, history: History) -> Sequence[Finding]:
        span = timedelta(hours=self.config.denial_window_hours)
        denials = history.events(
            since=event.occurred_at - span,
            until=event.occurred_at + span,
            kind="consent_denied",
            attr=("client_id", client_id),
        )
        window = densest_window(denials, lambda e: e.id, event.occurred_at, span)
        if window is None or len(window.keys) < self.config.min_denials:
            return ()
        hours, n = self.config.denial_window_hours, len(window.keys)
        return (
            self._finding(
                client_id,
                self.config.denial_severity,
                f"{hours}小时内{n}次查询因授权不符被拒",
                window.events,
                {"denials": n, "window_hours": hours, "since": window.since.isoformat()},
            ),
        )

    def _spike(self, event: MonitorEvent, client_id: str, history: History) -> Sequence[Finding]:
        span = timedelta(hours=self.config.spike_window_hours)
        baseline = timedelta(days=self.config.baseline_days)
        of_client = ("client_id", client_id)
        # Only the two spans around the event are read; the baseline is counted,
        # not read, since it holds days of a busy client's queries.
        near = history.events(  # ordered by (occurred_at, id)
            since=event.occurred_at - span,
            until=event.occurred_at + span,
            kind="query",
            attr=of_client,
        )
        times = [q.occurred_at for q in near]
        windows_in_baseline = baseline / span
        # Every window ending at a query in [t, t + span] contains this event.
        for end in times[bisect_left(times, event.occurred_at) :]:
            first_recent = bisect_left(times, end - span)
            recent = near[first_recent : bisect_right(times, end)]
            # The habit is [end - span - baseline, end - span): the count includes
            # its upper bound, whose queries `near` holds.
            on_edge = bisect_right(times, end - span) - first_recent
            habit = (
                history.count(
                    since=end - span - baseline, until=end - span, kind="query", attr=of_client
                )
                - on_edge
            )
            average = habit / windows_in_baseline
            if len(recent) >= self.config.min_spike_queries and len(recent) > (
                self.config.spike_factor * average
            ):
                title = f"{self.config.spike_window_hours}小时内查询{len(recent)}次，远超日常"
                details = {
                    "queries": len(recent),
                    "hourly_average": round(average / self.config.spike_window_hours, 3),
                    "window_hours": self.config.spike_window_hours,
                    "until": end.isoformat(),
                }
                return (
                    self._finding(client_id, self.config.spike_severity, title, recent, details),
                )
        return ()

    def _finding(
        self,
        client_id: str,
        severity: Severity,
        title: str,
        events: Sequence[MonitorEvent],
        details: dict[str, object],
    ) -> Finding:
        return Finding(
            rule=self.name,
            severity=severity,
            subject=f"bank:{client_id}",
            title=title,
            evidence=evidence(events),
            details=details,
        )
