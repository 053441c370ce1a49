"""Which of an enterprise's penalties may be repaired now, and the words pages show.

The decision is policies/repair.py's, on the same facts and repair decisions
the report reads (gateway/reports/sections.py), so "eligible" here and
"shown" there never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from gateway.reports.repository import StoredRecord
from gateway.reports.sections import Repairs, penalty_facts, repaired_on
from policies.publication import PublicationRules
from policies.repair import Eligibility, Refusal, eligibility

from .commitment import Lang

WORDS: dict[Lang, dict[Refusal | None, str]] = {
    "zh": {
        None: "可以申请信用修复（最短公示期已满）。",
        "natural_person": "涉及自然人的处罚信息不公示，无需修复。",
        "never_published": "该处罚信息（轻微或简易程序）不予公示，无需修复。",
        "not_yet_decided": "处罚决定尚未生效，暂不能申请修复。",
        "no_longer_published": "该处罚信息已停止公示，无需修复。",
        "already_repaired": "该处罚信息已完成信用修复。",
        "too_early": "最短公示期未满，{earliest} 起可以申请信用修复。",
    },
    "en": {
        None: "You may apply for credit repair (the minimum publication period has passed).",
        "natural_person": "Penalties on natural persons are not published; nothing to repair.",
        "never_published": "This penalty (minor or simple procedure) is not published; "
        "nothing to repair.",
        "not_yet_decided": "The penalty decision is not yet in effect; you cannot apply yet.",
        "no_longer_published": "This penalty is no longer published; nothing to repair.",
        "already_repaired": "This penalty has already been repaired.",
        "too_early": "The minimum publication period has not passed; you may apply from "
        "{earliest}.",
    },
}


def explain(result: Eligibility, lang: Lang) -> str:
    """The sentence a page shows for `result`."""
    earliest = result.earliest.isoformat() if result.earliest else ""
    return WORDS[lang][result.reason].format(earliest=earliest)


@cache
def publication_rules(config_dir: Path) -> PublicationRules:
    """config_dir/publication.yaml, the file the report reads."""
    return PublicationRules.load(config_dir / "publication.yaml")


@dataclass(frozen=True, slots=True)
class PenaltyEligibility:
    """A penalty of the enterprise and whether it may be repaired, with the words."""

    record_id: int
    decision_number: str | None
    department: str
    decision_date: date | None
    eligibility: Eligibility
    zh: str
    en: str


def judge(
    record: StoredRecord, rules: PublicationRules, decisions: Repairs, on: date
) -> PenaltyEligibility:
    facts = penalty_facts(record)
    if record.subject_kind == "natural_person":
        result = Eligibility(False, "natural_person")
    elif facts is None:
        result = Eligibility(False, "not_yet_decided")
    else:
        result = eligibility(rules, facts, repaired_on=repaired_on(record, decisions), on=on)
    number = record.data.get("decision_number")
    return PenaltyEligibility(
        record_id=record.id,
        decision_number=number if isinstance(number, str) else None,
        department=record.source_department,
        decision_date=facts.decision_date if facts else None,
        eligibility=result,
        zh=explain(result, "zh"),
        en=explain(result, "en"),
    )
