"""Publication rules: which records an enterprise credit report may show, on a day.

Penalties follow the rule set in force on their decision date
(config/publication.yaml): minor ones never, general and serious ones from
the decision date for at most `max_months`, withdrawn earlier by the
department's own publication end or by an approved credit repair (effective
no earlier than `min_months` after the decision). Records about natural
persons never appear, whatever the configuration says: that is the law, not
a setting. Lists and judgment-debtor entries show while they are in force
and not repaired.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.configfile import load_yaml

Severity = Literal["minor", "general", "serious"]
Hidden = Literal[
    "natural_person",
    "simple_procedure",
    "minor",
    "not_yet_decided",
    "period_ended",
    "source_withdrawn",
    "repaired",
    "removed",
    "expired",
    "not_yet_listed",
]


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_months: int = Field(ge=0, le=120)
    max_months: int = Field(ge=1, le=240)

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.min_months > self.max_months:
            raise ValueError("min_months exceeds max_months")
        return self


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    in_force_from: date
    minor: Period | None = None
    general: Period | None
    serious: Period | None

    def period(self, severity: Severity) -> Period | None:
        return {"minor": self.minor, "general": self.general, "serious": self.serious}[severity]


class PublicationRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_sets: list[RuleSet] = Field(min_length=1)
    unknown_severity: Severity = "general"
    publish_simple_procedure: bool = False

    @model_validator(mode="after")
    def _in_order(self) -> PublicationRules:
        starts = [rules.in_force_from for rules in self.rule_sets]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError("rule_sets: in_force_from must strictly increase")
        return self

    @classmethod
    def load(cls, path: Path) -> PublicationRules:
        """Read and validate; a bad file raises ValueError naming the field."""
        return load_yaml(path, cls.model_validate)

    def in_force(self, on: date) -> RuleSet:
        """The rule set in force on `on`; the oldest one also covers earlier dates."""
        chosen = self.rule_sets[0]
        for rules in self.rule_sets:
            if rules.in_force_from <= on:
                chosen = rules
        return chosen

    def penalty(self, penalty: PenaltyFacts, *, repaired_on: date | None, on: date) -> Visibility:
        if penalty.party_category == "natural_person":
            return Visibility(False, "natural_person")
        if penalty.procedure == "simple" and not self.publish_simple_procedure:
            return Visibility(False, "simple_procedure")
        severity = penalty.severity or self.unknown_severity
        rules = self.in_force(penalty.decision_date)
        period = rules.period(severity)
        if period is None:
            return Visibility(False, "minor")
        if on < penalty.decision_date:
            return Visibility(False, "not_yet_decided")
        ends = add_months(penalty.decision_date, period.max_months)
        # The department's own end date (inclusive) can only shorten the period.
        source_end = penalty.publication_until
        if source_end is not None and source_end < ends and on > source_end:
            return Visibility(False, "source_withdrawn")
        if on >= ends:
            return Visibility(False, "period_ended")
        if repaired_on is not None:
            honoured_from = max(repaired_on, add_months(penalty.decision_date, period.min_months))
            if on >= honoured_from:
                return Visibility(False, "repaired")
        return Visibility(True, None, rules.name, ends)


@dataclass(frozen=True, slots=True)
class PenaltyFacts:
    decision_date: date
    severity: Severity | None
    procedure: str
    party_category: str
    publication_until: date | None = None


@dataclass(frozen=True, slots=True)
class Visibility:
    shown: bool
    hidden_because: Hidden | None
    rule_set: str | None = None
    published_until: date | None = None  # exclusive


def in_force_entry(
    *,
    starts: date | None,
    valid_until: date | None,
    removed_on: date | None,
    repaired_on: date | None,
    on: date,
) -> Visibility:
    """A list or judgment-debtor entry: shown from its start while not ended or repaired."""
    if starts is not None and on < starts:
        return Visibility(False, "not_yet_listed")
    if removed_on is not None and on >= removed_on:
        return Visibility(False, "removed")
    if valid_until is not None and on > valid_until:
        return Visibility(False, "expired")
    if repaired_on is not None and on >= repaired_on:
        return Visibility(False, "repaired")
    return Visibility(True, None)


def add_months(day: date, months: int) -> date:
    """`day` plus whole calendar months; the 31st becomes the month's last day."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
