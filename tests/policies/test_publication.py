"""Publication rules, with dates on both sides of every boundary."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from policies.publication import (
    PenaltyFacts,
    PublicationRules,
    add_months,
    in_force_entry,
)

RULES = PublicationRules.load(Path("config/publication.yaml"))
DAY = timedelta(days=1)


def facts(decided: date, severity: str | None = "general", **overrides: object) -> PenaltyFacts:
    fields: dict[str, object] = {
        "decision_date": decided,
        "severity": severity,
        "procedure": "general",
        "party_category": "legal_person",
    }
    fields.update(overrides)
    return PenaltyFacts(**fields)  # type: ignore[arg-type]


def shown(penalty: PenaltyFacts, on: date, repaired_on: date | None = None) -> bool:
    return RULES.penalty(penalty, repaired_on=repaired_on, on=on).shown


def why(penalty: PenaltyFacts, on: date, repaired_on: date | None = None) -> str | None:
    return RULES.penalty(penalty, repaired_on=repaired_on, on=on).hidden_because


def test_general_penalty_shows_from_its_decision_for_twelve_months() -> None:
    penalty = facts(date(2026, 5, 10))
    assert why(penalty, date(2026, 5, 9)) == "not_yet_decided"
    assert shown(penalty, date(2026, 5, 10))
    assert shown(penalty, date(2027, 5, 9))
    assert why(penalty, date(2027, 5, 10)) == "period_ended"


@pytest.mark.parametrize(
    ("decided", "last_shown"),
    [
        # Decided under the 2026 rules: serious ones for 36 months.
        (date(2026, 4, 1), date(2029, 3, 31)),
        # The day before the 2026 rules: the 2019 rules, also 36 months at most.
        (date(2026, 3, 31), date(2029, 3, 30)),
    ],
)
def test_serious_penalty_lasts_three_years(decided: date, last_shown: date) -> None:
    penalty = facts(decided, "serious")
    assert shown(penalty, last_shown)
    assert why(penalty, last_shown + DAY) == "period_ended"


def test_the_rule_set_is_chosen_by_decision_date_not_today() -> None:
    assert RULES.in_force(date(2026, 3, 31)).name.startswith("2019")
    assert RULES.in_force(date(2026, 4, 1)).name.startswith("信用修复")
    assert RULES.in_force(date(2015, 1, 1)).name.startswith("2019")  # older: oldest rules


def test_repair_is_honoured_only_after_the_minimum_period_of_the_rules_then() -> None:
    # Serious, 2026 rules: at least 12 months before a repair takes effect.
    serious = facts(date(2026, 6, 1), "serious")
    early_repair = date(2026, 9, 1)
    assert shown(serious, date(2027, 5, 31), repaired_on=early_repair)
    assert why(serious, date(2027, 6, 1), repaired_on=early_repair) == "repaired"
    # Serious, 2019 rules: 6 months.
    old = facts(date(2025, 6, 1), "serious")
    assert shown(old, date(2025, 11, 30), repaired_on=date(2025, 7, 1))
    assert why(old, date(2025, 12, 1), repaired_on=date(2025, 7, 1)) == "repaired"
    # A repair after the minimum period counts from its own effective day.
    general = facts(date(2026, 5, 1))
    assert shown(general, date(2026, 10, 14), repaired_on=date(2026, 10, 15))
    assert why(general, date(2026, 10, 15), repaired_on=date(2026, 10, 15)) == "repaired"


def test_minor_simple_procedure_and_natural_persons_never_show() -> None:
    decided, on = date(2026, 6, 1), date(2026, 6, 2)
    assert why(facts(decided, "minor"), on) == "minor"
    assert why(facts(decided, procedure="simple"), on) == "simple_procedure"
    assert why(facts(decided, party_category="natural_person"), on) == "natural_person"
    assert shown(facts(decided, party_category="individual_business"), on)


def test_unknown_severity_is_general() -> None:
    penalty = facts(date(2026, 5, 10), None)
    assert shown(penalty, date(2027, 5, 9))
    assert not shown(penalty, date(2027, 5, 10))


def test_the_departments_own_end_can_only_shorten() -> None:
    shorter = facts(date(2026, 5, 10), publication_until=date(2026, 12, 31))
    assert shown(shorter, date(2026, 12, 31))
    assert why(shorter, date(2027, 1, 1)) == "source_withdrawn"
    longer = facts(date(2026, 5, 10), publication_until=date(2030, 1, 1))
    assert why(longer, date(2027, 5, 10)) == "period_ended"


def test_list_entries_show_while_in_force() -> None:
    listed = date(2026, 1, 10)

    def entry(on: date, **kw: date | None) -> str | None:
        fields: dict[str, date | None] = {
            "starts": listed, "valid_until": None, "removed_on": None, "repaired_on": None,
        }  # fmt: skip
        fields.update(kw)
        return in_force_entry(on=on, **fields).hidden_because  # type: ignore[arg-type]

    assert entry(listed - DAY) == "not_yet_listed"
    assert entry(listed) is None
    assert entry(date(2026, 3, 1), removed_on=date(2026, 3, 2)) is None
    assert entry(date(2026, 3, 2), removed_on=date(2026, 3, 2)) == "removed"
    assert entry(date(2026, 6, 30), valid_until=date(2026, 6, 30)) is None
    assert entry(date(2026, 7, 1), valid_until=date(2026, 6, 30)) == "expired"
    assert entry(date(2026, 4, 30), repaired_on=date(2026, 5, 1)) is None
    assert entry(date(2026, 5, 1), repaired_on=date(2026, 5, 1)) == "repaired"


def test_add_months_keeps_the_last_day_of_short_months() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 5, 10), 36) == date(2029, 5, 10)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("rule_sets: []", "rule_sets"),
        (
            "rule_sets:\n"
            "  - {name: a, in_force_from: 2026-01-01, general: {min_months: 13, max_months: 12},"
            " serious: null}",
            "min_months exceeds",
        ),
        (
            "rule_sets:\n"
            "  - {name: a, in_force_from: 2026-01-01, general: null, serious: null}\n"
            "  - {name: b, in_force_from: 2025-01-01, general: null, serious: null}",
            "strictly increase",
        ),
        ("rule_sets: [{name: a}]", "in_force_from"),
    ],
)
def test_a_bad_rules_file_names_the_problem(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "publication.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=named):
        PublicationRules.load(path)
