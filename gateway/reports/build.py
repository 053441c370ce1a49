"""Building a credit report: sections, completeness, the score and its trend.

`ReportBuilder.build` makes the full report of an enterprise for one data
version (what the cache keeps); `consent_cut` cuts it down to the sections
a consent covers (the same for every request under such a consent), and
`request_members` are one request's own fields beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from gateway.loans.service import LedgerEvent
from gateway.reports.loans import loan_ref, scored_loans
from gateway.reports.repository import StoredRecord
from gateway.reports.scoring import EnterpriseFacts, ScoredRecord, ScoreModel
from gateway.reports.sections import SectionConfig, Shown, completeness, shown_records
from gateway.reports.signing import without_floats
from policies.publication import PublicationRules

CHENGDU = timezone(timedelta(hours=8))
_ENTERPRISE_FIELDS = (
    "credit_code", "name", "entity_type", "division_code", "legal_rep_masked",
    "registered_on", "status", "registered_capital_fen", "industry_code",
)  # fmt: skip


def report_day(now: datetime) -> date:
    """Reports are dated by the Chengdu calendar."""
    return now.astimezone(CHENGDU).date()


def quarter_ends_before(day: date, count: int = 4) -> list[date]:
    """The last `count` calendar quarter ends strictly before `day`, oldest first."""
    ends: list[date] = []
    year, quarter = day.year, (day.month - 1) // 3  # the quarter before day's own
    while len(ends) < count:
        if quarter == 0:
            year, quarter = year - 1, 4
        month = quarter * 3
        ends.append(date(year, month, 30 if month in (6, 9) else 31))
        quarter -= 1
    return sorted(ends)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


@dataclass(frozen=True)
class ReportBuilder:
    rules: PublicationRules
    sections: SectionConfig
    model: ScoreModel

    @classmethod
    def load(cls, config_dir: Path) -> ReportBuilder:
        """Every report rule file, validated; a bad one stops start-up naming the field."""
        return cls(
            PublicationRules.load(config_dir / "publication.yaml"),
            SectionConfig.load(config_dir / "report.yaml"),
            ScoreModel.load(config_dir / "score_model.yaml"),
        )

    def _score(
        self,
        shown: Sequence[Shown],
        facts: EnterpriseFacts,
        on: date,
        loan_events: Sequence[LedgerEvent],
    ) -> dict[str, Any]:
        scored = [
            ScoredRecord(
                id=s.record.id,
                category=s.record.category,
                source_department=s.record.source_department,
                effective_date=s.record.effective_date,
                data=s.record.data,
            )
            for s in shown
        ]
        scored.extend(scored_loans(loan_events, on))
        return self.model.score(scored, as_of=on, enterprise=facts)

    def build(
        self,
        enterprise: dict[str, Any],
        records: Sequence[StoredRecord],
        feeds: dict[str, datetime],
        now: datetime,
        disputes: dict[int, dict[str, Any]] | None = None,
        loans: list[dict[str, Any]] | None = None,
        loan_events: Sequence[LedgerEvent] = (),
    ) -> dict[str, Any]:
        """`loans`: the enterprise's ledger rows, or None when no platform is
        connected; `loan_events`: their events (`gateway.loans.service.history`),
        which the score folds as of each day it is computed for (ignored when
        no platform is connected, as the section says so)."""
        today = report_day(now)
        facts = EnterpriseFacts(
            status=str(enterprise["status"]), registered_on=enterprise.get("registered_on")
        )
        shown = shown_records(records, self.rules, self.sections, today, disputes)
        sections: dict[str, dict[str, Any]] = {
            name: {"items": []} for name in self.sections.sections
        }
        if "basic" in sections:
            sections["basic"]["enterprise"] = {
                name: _iso(enterprise.get(name)) for name in _ENTERPRISE_FIELDS
            }
        for s in shown:
            sections[s.section]["items"].append(s.item)
        if loans is not None and "loans" in sections:
            sections["loans"]["items"] = loans
        history = loan_events if loans is not None else ()
        score = self._score(shown, facts, today, history)
        trend = []
        for end in quarter_ends_before(today):
            then = [r for r in records if r.effective_date is None or r.effective_date <= end]
            shown_then = shown_records(then, self.rules, self.sections, end)
            past = self._score(shown_then, facts, end, history)
            trend.append(
                {
                    "quarter": f"{end.year}Q{(end.month + 2) // 3}",
                    "as_of": end.isoformat(),
                    "value": past["value"],
                    "grade": past["grade"],
                    "not_scored": (past["not_scored"] or {}).get("code"),
                }
            )
        stamps = [r.updated_at for r in records]
        updated = enterprise.get("updated_at")
        if isinstance(updated, datetime):
            stamps.append(updated)
        report: dict[str, Any] = {
            "credit_code": enterprise["credit_code"],
            "enterprise_name": enterprise["name"],
            "data_version": int(enterprise.get("data_version") or 0),
            "data_as_of": max(stamps).isoformat() if stamps else None,
            "as_of_date": today.isoformat(),
            "sections": sections,
            "completeness": completeness(
                self.sections, feeds, now, ledger_connected=loans is not None
            ),
            "score": score,
            "score_trend": trend,
        }
        result: dict[str, Any] = without_floats(report)
        return result


def _withhold(reason: dict[str, Any], allowed: frozenset[int | str]) -> dict[str, Any]:
    kept = [i for i in reason["evidence"] if i in allowed]
    out = {**reason, "evidence": kept}
    if len(kept) != len(reason["evidence"]):
        out["evidence_withheld"] = len(reason["evidence"]) - len(kept)
    return out


def consent_cut(full: dict[str, Any], sections: frozenset[str]) -> dict[str, Any]:
    """What a consent to `sections` may see of a full report: its sections only, and
    no evidence from others. The same for every request under such a consent."""
    allowed_sections = {n: full["sections"][n] for n in sorted(sections) if n in full["sections"]}
    # Ledger rows in `loans` are not government records: reasons cite a loan as
    # `platform:loan_no` (gateway/reports/loans.py), a record by its id.
    visible_ids = frozenset(
        loan_ref(item["platform"], item["loan_no"]) if name == "loans" else item["record_id"]
        for name, section in allowed_sections.items()
        for item in section["items"]
    )
    score = dict(full["score"])
    score["reasons"] = [_withhold(r, visible_ids) for r in score["reasons"]]
    score["principal_negative_reasons"] = [
        _withhold(r, visible_ids) for r in score["principal_negative_reasons"]
    ]
    return {
        "credit_code": full["credit_code"],
        "enterprise_name": full["enterprise_name"],
        "data_as_of": full["data_as_of"],
        "data_version": full["data_version"],
        "as_of_date": full["as_of_date"],
        "sections": allowed_sections,
        "sections_not_consented": sorted(set(full["sections"]) - set(allowed_sections)),
        "completeness": {n: full["completeness"][n] for n in allowed_sections},
        "score": score,
        "score_trend": full["score_trend"],
    }


# A report's own members, beside its shared cut. Those sorting before
# "signature" open the report, the others close it: `signing.split` keeps the
# cut's members between them (the score and the sections) encoded once.
REQUEST_MEMBERS = (
    "consent_id", "generated_at", "purpose", "recipient", "report_id", "valid_until",
)  # fmt: skip
OPENING_UP_TO = max(name for name in REQUEST_MEMBERS if name < "signature")
CLOSING_FROM = min(name for name in REQUEST_MEMBERS if name > "signature")
VALID_DAYS = 30


def request_members(
    *,
    consent_id: str | None,
    purpose: str,
    report_id: str,
    generated_at: datetime,
    client_id: str,
    org_code: str | None,
    stale_at: datetime | None,
) -> dict[str, Any]:
    """What one report as sent adds to its `consent_cut` (shared, never modified):
    its id and time, who it was for and why (so a leaked copy is attributable),
    and until when its content holds (`valid_until`)."""
    valid_until = generated_at + timedelta(days=VALID_DAYS)
    if stale_at is not None and stale_at < valid_until:
        valid_until = stale_at
    return {
        "report_id": report_id,
        "generated_at": generated_at.isoformat(),
        "consent_id": consent_id,
        "purpose": purpose,
        "recipient": {"client_id": client_id, "org_code": org_code},
        "valid_until": valid_until.isoformat(),
    }


def stale_at(cut: dict[str, Any]) -> datetime | None:
    """When a cut's content is known to change: the start (Chengdu midnight) of
    the day after the earliest last day of publication among the records it
    shows, when one has such a day. The same for every request under the cut."""
    ends = [
        item["published_until"]
        for section in cut["sections"].values()
        for item in section["items"]
        if isinstance(item.get("published_until"), str)
    ]
    if not ends:
        return None
    last = date.fromisoformat(min(ends))
    return datetime.combine(last + timedelta(days=1), time(), CHENGDU).astimezone(UTC)
