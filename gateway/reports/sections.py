"""Report sections from an enterprise's records, under the publication rules.

Each section lists the records it may show on the report's day, each with
its source department and `data_as_of`; `completeness` says per section
whether the departments' feeds are fresh enough to call it complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.reports.repository import StoredRecord
from gateway.store.tables import CATEGORIES
from policies.configfile import load_yaml
from policies.publication import PenaltyFacts, PublicationRules, Visibility, in_force_entry

# Fields that identify a person or only serve our own bookkeeping: never shown.
_HIDDEN_FIELDS = frozenset({"legal_rep_hash", "party_hash", "credit_code", "record_id", "category"})


class SectionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: list[str]
    fresh_days: int = Field(ge=1, le=3660)


class SectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sections: dict[str, SectionSpec]

    @model_validator(mode="after")
    def _known_categories(self) -> SectionConfig:
        for name, spec in self.sections.items():
            unknown = set(spec.categories) - set(CATEGORIES)
            if unknown:
                raise ValueError(f"sections.{name}: unknown category {', '.join(sorted(unknown))}")
        return self

    @classmethod
    def load(cls, path: Path) -> SectionConfig:
        return load_yaml(path, cls.model_validate)

    def section_of(self) -> dict[str, str]:
        return {c: name for name, spec in self.sections.items() for c in spec.categories}


@dataclass(frozen=True, slots=True)
class Shown:
    record: StoredRecord
    section: str
    item: dict[str, Any]


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


Repairs = dict[tuple[str, str, str | None], tuple[date, int, bool]]


def penalty_facts(record: StoredRecord) -> PenaltyFacts | None:
    """What the publication rules judge a stored penalty by; None before its decision date
    is known. Reports and repair eligibility both read penalties through this."""
    data = record.data
    decided = _day(data.get("decision_date")) or record.effective_date
    if decided is None:
        return None
    return PenaltyFacts(
        decision_date=decided,
        severity=data.get("severity"),
        procedure=str(data.get("procedure", "general")),
        party_category=str(data.get("party_category", "legal_person")),
        publication_until=_day(data.get("publication_until")),
    )


def repairs(records: Iterable[StoredRecord]) -> Repairs:
    """Repair decisions by (repaired category, department's record id, department).

    The latest decision on a record wins, so a repair withdrawn (or a new
    rejected one) after an approved one puts the record back. Record ids are
    unique per department only; a repair naming no department matches any.
    """
    found: Repairs = {}
    for record in records:
        if record.category != "credit_repair":
            continue
        data = record.data
        day = _day(data.get("effective_on")) or record.effective_date
        target = data.get("repaired_record_id")
        if day is None or not isinstance(target, str):
            continue
        department = data.get("repaired_source_department")
        key = (str(data.get("repaired_category", "penalty")), target, department)
        decision = (day, record.id, data.get("status", "approved") == "approved")
        found[key] = max(found.get(key, decision), decision)
    return found


def repaired_on(record: StoredRecord, decisions: Repairs) -> date | None:
    """The day an approved repair of `record` takes effect, if its latest decision is one."""
    own = (record.category, record.source_record_id)
    candidates = [decisions.get((*own, dept)) for dept in (record.source_department, None)]
    latest = max((d for d in candidates if d is not None), default=None)
    return latest[0] if latest is not None and latest[2] else None


def visibility(
    record: StoredRecord,
    rules: PublicationRules,
    decisions: Repairs,
    on: date,
) -> Visibility:
    """May `record` appear in a report dated `on`?"""
    if record.subject_kind == "natural_person":
        return Visibility(False, "natural_person")
    data = record.data
    repaired = repaired_on(record, decisions)
    if record.category == "penalty":
        facts = penalty_facts(record)
        if facts is None:
            return Visibility(False, "not_yet_decided")
        return rules.penalty(facts, repaired_on=repaired, on=on)
    if record.category in ("red_list", "black_list"):
        return in_force_entry(
            starts=_day(data.get("listed_on")),
            valid_until=_day(data.get("valid_until")),
            removed_on=_day(data.get("removed_on")),
            repaired_on=repaired,
            on=on,
        )
    if record.category == "judgment_debtor":
        return in_force_entry(
            starts=_day(data.get("filed_on")),
            valid_until=None,
            removed_on=_day(data.get("removed_on")),
            repaired_on=repaired,
            on=on,
        )
    if record.effective_date is not None and record.effective_date > on:
        return Visibility(False, "not_yet_decided")
    return Visibility(True, None)


def shown_records(
    records: Sequence[StoredRecord],
    rules: PublicationRules,
    config: SectionConfig,
    on: date,
    disputes: dict[int, dict[str, Any]] | None = None,
) -> list[Shown]:
    section_of = config.section_of()
    decisions = repairs(records)
    shown: list[Shown] = []
    for record in records:
        section = section_of.get(record.category)
        if section is None:
            continue
        seen = visibility(record, rules, decisions, on)
        if not seen.shown:
            continue
        item = {k: v for k, v in record.data.items() if k not in _HIDDEN_FIELDS}
        item.update(
            record_id=record.id,
            category=record.category,
            source_record_id=record.source_record_id,
            source_department=record.source_department,
            version=record.version,
            data_as_of=record.updated_at.isoformat(),
        )
        dispute = (disputes or {}).get(record.id)
        if dispute is not None:
            # An open dispute is shown with its date; a resolved one with its outcome.
            item["dispute"] = {
                "status": dispute["status"],
                "opened_at": dispute["opened_at"],
                "resolved_at": dispute["resolved_at"],
            }
        if seen.published_until is not None:
            item["published_until"] = (seen.published_until - timedelta(days=1)).isoformat()
            item["publication_rule_set"] = seen.rule_set
        shown.append(Shown(record, section, item))
    return shown


def completeness(
    config: SectionConfig,
    feeds: dict[str, datetime],
    now: datetime,
    *,
    ledger_connected: bool = False,
) -> dict[str, dict[str, Any]]:
    """Per section: complete, partial or unavailable, and why; no gap goes unsaid.
    A complete section says which feeds it rests on, so an empty one reads as
    "delivered, nothing held", never as "not delivered"."""
    result: dict[str, dict[str, Any]] = {}
    for name, spec in config.sections.items():
        if not spec.categories:  # the loan ledger, fed by the platforms
            result[name] = (
                {"status": "complete", "reason": "platform ledger connected; every loan shown"}
                if ledger_connected
                else {"status": "unavailable", "reason": "no data source is connected yet"}
            )
            continue
        missing = [c for c in spec.categories if c not in feeds]
        stale = [
            c for c in spec.categories
            if c in feeds and now - feeds[c] > timedelta(days=spec.fresh_days)
        ]  # fmt: skip
        if len(missing) == len(spec.categories):
            result[name] = {
                "status": "unavailable",
                "reason": f"no complete feed received for {', '.join(missing)}",
            }
        elif missing or stale:
            parts = [f"no complete feed for {c}" for c in missing] + [
                f"{c} data is older than {spec.fresh_days} days "
                f"(last feed {feeds[c].date().isoformat()})"
                for c in stale
            ]
            result[name] = {"status": "partial", "reason": "; ".join(parts)}
        else:
            delivered = ", ".join(f"{c} {feeds[c].date().isoformat()}" for c in spec.categories)
            result[name] = {
                "status": "complete",
                "reason": f"feeds delivered and current (last complete feed: {delivered}); "
                "a section without records has none to show",
            }
    return result
