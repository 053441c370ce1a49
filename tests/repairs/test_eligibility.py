"""Eligibility for credit repair, decided from the publication rules in config/."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.repairs.eligibility import explain
from policies.publication import PenaltyFacts, PublicationRules
from policies.repair import Eligibility, eligibility

RULES = PublicationRules.load(Path(__file__).resolve().parents[2] / "config" / "publication.yaml")
ON = date(2026, 12, 6)


def facts(decided: date, severity: str | None = "general", **kw: str | date | None) -> PenaltyFacts:
    return PenaltyFacts(
        decision_date=decided,
        severity=severity,  # type: ignore[arg-type]
        procedure=str(kw.get("procedure", "general")),
        party_category=str(kw.get("party_category", "legal_person")),
        publication_until=kw.get("publication_until"),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("penalty", "repaired", "expected"),
    [
        # General, 2026 rules: 3 months at least, published 12.
        (facts(date(2026, 8, 1)), None, Eligibility(True, None, date(2026, 11, 1))),
        (facts(date(2026, 10, 1)), None, Eligibility(False, "too_early", date(2027, 1, 1))),
        # Serious under the 2026 rules: 12 months; under the 2019 rules: 6.
        (facts(date(2026, 5, 1), "serious"), None,
         Eligibility(False, "too_early", date(2027, 5, 1))),
        (facts(date(2026, 3, 1), "serious"), None, Eligibility(True, None, date(2026, 9, 1))),
        # No severity given: treated as general.
        (facts(date(2026, 8, 1), None), None, Eligibility(True, None, date(2026, 11, 1))),
        (facts(date(2026, 8, 1), "minor"), None, Eligibility(False, "never_published")),
        (facts(date(2026, 8, 1), procedure="simple"), None, Eligibility(False, "never_published")),
        (facts(date(2026, 8, 1), party_category="natural_person"), None,
         Eligibility(False, "natural_person")),
        (facts(date(2025, 6, 1)), None, Eligibility(False, "no_longer_published")),  # 12 months
        (facts(date(2026, 8, 1), publication_until=date(2026, 11, 30)), None,
         Eligibility(False, "no_longer_published")),  # withdrawn by its department
        (facts(date(2026, 8, 1)), date(2026, 11, 20), Eligibility(False, "already_repaired")),
        (facts(date(2027, 1, 1)), None, Eligibility(False, "not_yet_decided")),
    ],
)  # fmt: skip
def test_eligibility_follows_the_publication_rules(
    penalty: PenaltyFacts, repaired: date | None, expected: Eligibility
) -> None:
    assert eligibility(RULES, penalty, repaired_on=repaired, on=ON) == expected


def test_words_name_the_earliest_day_in_both_languages() -> None:
    early = eligibility(RULES, facts(date(2026, 10, 1)), repaired_on=None, on=ON)
    assert "2027-01-01" in explain(early, "zh") and "最短公示期未满" in explain(early, "zh")
    assert "from 2027-01-01" in explain(early, "en")
    assert "可以申请" in explain(Eligibility(True, None, date(2026, 11, 1)), "zh")
