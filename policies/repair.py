"""Credit repair (信用修复) eligibility: may a published penalty be applied for, and when.

Pure and decided from the publication rules (policies/publication.py) in
force on the penalty's decision date: a penalty that is shown may be
repaired once `min_months` of its period have passed since the decision; one
that is not shown (a natural person's, a minor or simple-procedure one, one
whose period ended or that its department withdrew) has nothing to repair;
one already repaired is done. Whether an application is already open is the
service's question, not this one's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from policies.publication import PenaltyFacts, PublicationRules, add_months

Refusal = Literal[
    "natural_person",
    "never_published",
    "not_yet_decided",
    "no_longer_published",
    "already_repaired",
    "too_early",
]


@dataclass(frozen=True, slots=True)
class Eligibility:
    """`eligible`, else `reason`; `earliest` is the first day an application is accepted
    (None when there is nothing to repair)."""

    eligible: bool
    reason: Refusal | None
    earliest: date | None = None


def eligibility(
    rules: PublicationRules, penalty: PenaltyFacts, *, repaired_on: date | None, on: date
) -> Eligibility:
    """May the enterprise apply on `on` to repair `penalty`?"""
    shown = rules.penalty(penalty, repaired_on=None, on=on)
    if not shown.shown:
        reason: Refusal = {
            "natural_person": "natural_person",
            "simple_procedure": "never_published",
            "minor": "never_published",
            "not_yet_decided": "not_yet_decided",
        }.get(shown.hidden_because or "", "no_longer_published")  # type: ignore[assignment]
        return Eligibility(False, reason)
    if repaired_on is not None:
        return Eligibility(False, "already_repaired")
    severity = penalty.severity or rules.unknown_severity
    period = rules.in_force(penalty.decision_date).period(severity)
    assert period is not None  # a shown penalty has a period
    earliest = add_months(penalty.decision_date, period.min_months)
    if on < earliest:
        return Eligibility(False, "too_early", earliest)
    return Eligibility(True, None, earliest)
