"""The points-based credit score (信用积分): a versioned model from config/score_model.yaml.

A score starts at `base`; each indicator that holds adds its points (negative
for untrustworthy conduct); `value == base + Σ reasons.points`, never clamped.
Reasons are sorted by points, then indicator id (then department); each cites every record that
matched it (per-record points stop at `max_times`). The model file:

- `departments.<key>`: `name`, and `match`: substrings naming it in a record's
  `source_department` (or in the field an indicator's `department_in` names).
- `indicators[]`: `id`, `name`, `department`, `category`, `points`, and
  - `when`: clauses `{field, op, value}`, all of which must hold. Ops: eq ne in
    not_in (choices, flags, numbers, text); gt gte lt lte (numbers); contains
    contains_any (text, or any item of a list, as a substring); is_null not_null.
    Fields are the category's stored fields (`gateway/records/schemas.py`).
  - `department_in`: the field that must name the department (default
    `source_department`; null: any department).
  - `counts_for_days: N` (effective date 0..N-1 days before `as_of`) and/or
    `current: true` (the listing, debt, licence or publication is in force on
    `as_of`); `latest_by: field` keeps the category's newest records only.
  - `per_record: true` with `max_times`: points × matching records, capped.
  Category `enterprise` tests the enterprise itself: `age_days`, `age_years`, `status`.
  Category `loan` tests the platforms' loans (gateway/reports/loans.py folds
  them from the ledger as of `as_of`): `status`, `days_overdue` (as the
  platform last reported), `max_days_overdue`, `defaulted` (ever),
  `amount_fen`, `outstanding_fen`, `disbursed_on`, `ended_on`; its
  `counts_for_days` runs from the day the loan ended (an open loan always
  counts), `current` holds while it is open. A loan indicator has no
  `department`: its reasons name the platform that reported the loan
  (`department` its key, as the `loans` section's `platform`) and cite the
  loan as `platform:loan_no`.
  An indicator of any department (`department_in: null`) counts each
  department's records on their own, and its reasons name that department (the
  record's `source_department`, the one that decided it), never the indicator's.
- `max_extra_per_record`: one record feeding several negative indicators counts
  fully in its worst one and at most this many points in all the others
  together; the excess comes back as one `CAP-RECORD` reason citing the record.
- Which records may count at all is not the model's business: the report
  builder scores only what the publication rules (policies/publication.py)
  let the report show, repairs and withdrawals included.
- `grades`, `risk_classes`: `{label, min}` from the top; the last has no `min`.
- `not_scored[]`: the first rule that holds gives `{code, reason}` instead of a number.

Loading raises ValueError naming the file and the field; nothing is checked
again per request. Records dated after `as_of` are not yet known and ignored.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from gateway.dashboard.i18n import PLATFORM
from gateway.loans.schemas import LoanStatus
from gateway.records.schemas import ENTERPRISE_STATUSES, SCHEMAS, EnterpriseStatus
from policies.configfile import load_yaml

MIN_INDICATORS = 40
MIN_DEPARTMENTS = 10
PRINCIPAL_NEGATIVE = 4
ENTERPRISE = "enterprise"
LOAN = "loan"
PLATFORM_NAMES = PLATFORM["zh"]
CAP_REASON = ("CAP-RECORD", "同一记录多项扣分封顶（超出部分不计）")


@dataclass(frozen=True, slots=True)
class ScoredRecord:
    id: int | str  # records.id in our store, or a loan's `platform:loan_no`; reasons cite these
    category: str
    source_department: str
    effective_date: date | None
    data: Mapping[str, Any]  # the category's normalised fields (RecordBase.normalise)


@dataclass(frozen=True, slots=True)
class EnterpriseFacts:
    status: str
    registered_on: date | None


# --- what a condition may test ------------------------------------------------

Kind = Literal["choice", "flag", "number", "decimal", "text", "date", "list"]
_SIMPLE_KINDS: dict[Any, Kind] = {bool: "flag", int: "number", Decimal: "decimal", date: "date"}
# Penalty.normalise stores amounts in fen only.
_NOT_STORED = {"penalty": frozenset({"fine_wan", "confiscation_wan"})}
_STATUSES = frozenset(get_args(get_args(EnterpriseStatus)[0]))


@dataclass(frozen=True, slots=True)
class FieldType:
    kind: Kind
    choices: frozenset[object] = frozenset()


def _field_type(annotation: Any) -> FieldType:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return _field_type(next(a for a in get_args(annotation) if a is not NoneType))
    if origin is Annotated:
        return _field_type(get_args(annotation)[0])
    if origin is Literal:
        return FieldType("choice", frozenset(get_args(annotation)))
    if origin is list:
        return FieldType("list")
    return FieldType(_SIMPLE_KINDS.get(annotation, "text"))


FIELDS: dict[str, dict[str, FieldType]] = {
    category: {
        name: _field_type(info.annotation)
        for name, info in cls.model_fields.items()
        if name not in cls.personal_fields and name not in _NOT_STORED.get(category, ())
    }
    for category, cls in SCHEMAS.items()
}
FIELDS[ENTERPRISE] = {
    "age_days": FieldType("number"),
    "age_years": FieldType("number"),
    "status": FieldType("choice", _STATUSES),
}
FIELDS[LOAN] = {
    "platform": FieldType("text"),
    "loan_no": FieldType("text"),
    "status": FieldType("choice", frozenset(get_args(LoanStatus))),
    "amount_fen": FieldType("number"),
    "outstanding_fen": FieldType("number"),
    "days_overdue": FieldType("number"),
    "max_days_overdue": FieldType("number"),
    "defaulted": FieldType("flag"),
    "disbursed_on": FieldType("date"),
    "ended_on": FieldType("date"),
}

Op = Literal[
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte",
    "is_null", "not_null", "contains", "contains_any",
]  # fmt: skip
_OP_KINDS: dict[str, frozenset[Kind]] = {
    **dict.fromkeys(("eq", "ne", "in", "not_in"), frozenset(("choice", "flag", "number", "text"))),
    **dict.fromkeys(("gt", "gte", "lt", "lte"), frozenset(("number", "decimal"))),
    **dict.fromkeys(("contains", "contains_any"), frozenset(("text", "list"))),
}
_LIST_OPS = frozenset(("in", "not_in", "contains_any"))
_ORDERED_KINDS = ("number", "text", "date")
_VALUE_TYPES: dict[Kind, tuple[type, ...]] = {
    "flag": (bool,),
    "number": (int,),
    "decimal": (int, float),
    "text": (str,),
    "list": (str,),
    "choice": (str,),
}
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr


# --- the file ---------------------------------------------------------------


class Clause(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(description="A stored field of the indicator's category")
    op: Op
    value: Scalar | list[Scalar] | None = Field(None, description="Absent for is_null/not_null")

    def check(self, fields: Mapping[str, FieldType], where: str) -> None:
        ftype = fields.get(self.field)
        if ftype is None:
            raise ValueError(
                f"{where}.field: {self.field!r} is not a field (known: {sorted(fields)})"
            )
        if self.op in ("is_null", "not_null"):
            if "value" in self.model_fields_set:
                raise ValueError(f"{where}.value: {self.op} takes no value")
            return
        if ftype.kind not in _OP_KINDS[self.op]:
            raise ValueError(f"{where}.op: {self.op} does not apply to {self.field} ({ftype.kind})")
        values = self.value if isinstance(self.value, list) else [self.value]
        if isinstance(self.value, list) != (self.op in _LIST_OPS) or not values:
            shape = "a non-empty list" if self.op in _LIST_OPS else "one value"
            raise ValueError(f"{where}.value: {self.op} takes {shape}")
        for item in values:
            wrong_type = not isinstance(item, _VALUE_TYPES[ftype.kind]) or (
                isinstance(item, bool) and ftype.kind != "flag"
            )
            if wrong_type or (ftype.kind == "choice" and item not in ftype.choices):
                allowed = sorted(map(str, ftype.choices)) if ftype.choices else ftype.kind
                raise ValueError(
                    f"{where}.value: {item!r} is not valid for {self.field} ({allowed})"
                )


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, description="Chinese name shown in reasons")
    match: tuple[str, ...] = Field(min_length=1, description="Substrings that identify it")


_TIME_KEYS = frozenset(("counts_for_days", "current", "latest_by", "per_record", "max_times"))


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Z]{2,6}(-[A-Z0-9]+)+$", description="Stable code")
    name: str = Field(min_length=1, max_length=60)
    department: str | None = Field(None, description="Required but for loans (their platform)")
    category: str
    when: tuple[Clause, ...] = ()
    points: int = Field(ge=-1000, le=1000)
    department_in: str | None = "source_department"
    counts_for_days: int | None = Field(None, ge=1, le=36_500)
    current: bool = False
    latest_by: str | None = None
    per_record: bool = False
    max_times: int | None = Field(None, ge=1, le=100)

    @model_validator(mode="after")
    def _coherent(self) -> Indicator:
        fields = _category_fields(self.category, f"indicator {self.id}: category")
        where = f"indicator {self.id}"
        if self.points == 0:
            raise ValueError(f"{where}: points: 0 says nothing; leave the indicator out")
        for n, clause in enumerate(self.when):
            clause.check(fields, f"{where}: when[{n}]")
        if self.per_record != (self.max_times is not None):
            raise ValueError(f"{where}: max_times: required with per_record, and only with it")
        if self.category == LOAN:
            if stray := sorted(self.model_fields_set & {"department", "department_in"}):
                raise ValueError(
                    f"{where}: {stray[0]}: a loan's reasons name the platform that reported it"
                )
        elif self.department is None:
            raise ValueError(f"{where}: department: required")
        if self.category == ENTERPRISE:
            if stray := sorted(self.model_fields_set & (_TIME_KEYS | {"department_in"})):
                raise ValueError(f"{where}: {stray[0]}: does not apply to the enterprise itself")
            return self
        if self.counts_for_days is None and not self.current:
            raise ValueError(f"{where}: counts_for_days: required unless current (none is forever)")
        if self.current and self.category not in IN_FORCE:
            raise ValueError(f"{where}: current: {self.category} has no in-force dates")
        # Stored decimals are strings and lists do not order: neither can pick the latest.
        for key, kinds in (("latest_by", _ORDERED_KINDS), ("department_in", ("text",))):
            name = getattr(self, key)
            if name in (None, "source_department"):
                continue
            if name not in fields or fields[name].kind not in kinds:
                raise ValueError(
                    f"{where}: {key}: {name!r} is not a {'/'.join(kinds)} field of {self.category}"
                )
        return self


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1, max_length=10)
    min: int | None = Field(None, description="Lowest score in the band; the last band has none")


class NotScoredRule(BaseModel):
    """Holds when every condition given holds; at least one must be given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^NS-[A-Z0-9-]+$")
    reason: str = Field(min_length=1)
    status_in: tuple[str, ...] | None = None
    registered_within_days: int | None = Field(None, ge=1, le=3650)
    only_categories: tuple[str, ...] | None = Field(
        None, description="No record outside these categories"
    )

    @model_validator(mode="after")
    def _conditions(self) -> NotScoredRule:
        if self.model_fields_set.isdisjoint(
            ("status_in", "registered_within_days", "only_categories")
        ):
            raise ValueError(
                f"{self.code}: give status_in, registered_within_days or only_categories"
            )
        if unknown := set(self.status_in or ()) - _STATUSES:
            raise ValueError(f"{self.code}: status_in: unknown status {sorted(unknown)}")
        for category in self.only_categories or ():
            _category_fields(category, f"{self.code}: only_categories")
        return self


class ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_version: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]{0,39}$")
    base: int = Field(ge=0, le=10_000)
    departments: dict[Annotated[str, Field(pattern=r"^[a-z][a-z_]*$")], Department]
    indicators: tuple[Indicator, ...]
    grades: tuple[Band, ...] = Field(min_length=1)
    risk_classes: tuple[Band, ...] = Field(min_length=1)
    not_scored: tuple[NotScoredRule, ...] = ()
    max_extra_per_record: int | None = Field(
        None, ge=0, le=1000,
        description="Points one record may lose beyond its worst indicator; null: no cap",
    )  # fmt: skip

    @model_validator(mode="after")
    def _consistent(self) -> ModelFile:
        seen: set[str] = set()
        for indicator in self.indicators:
            if indicator.id in seen:
                raise ValueError(f"indicators: duplicate id {indicator.id}")
            seen.add(indicator.id)
            if indicator.department is not None and indicator.department not in self.departments:
                raise ValueError(
                    f"indicator {indicator.id}: department: unknown department "
                    f"{indicator.department!r} (known: {sorted(self.departments)})"
                )
        used = {i.department for i in self.indicators if i.department is not None}
        if len(self.indicators) < MIN_INDICATORS or len(used) < MIN_DEPARTMENTS:
            raise ValueError(
                f"indicators: {len(self.indicators)} from {len(used)} departments; the model "
                f"needs at least {MIN_INDICATORS} from {MIN_DEPARTMENTS}"
            )
        _check_bands("grades", self.grades)
        _check_bands("risk_classes", self.risk_classes)
        return self


def _category_fields(category: str, where: str) -> dict[str, FieldType]:
    if category not in FIELDS:
        raise ValueError(f"{where}: unknown category {category!r} (known: {sorted(FIELDS)})")
    return FIELDS[category]


def _check_bands(where: str, bands: Sequence[Band]) -> None:
    if len({band.label for band in bands}) != len(bands):
        raise ValueError(f"{where}: labels repeat")
    thresholds = [(band.label, band.min) for band in bands[:-1] if band.min is not None]
    if bands[-1].min is not None or len(thresholds) != len(bands) - 1:
        raise ValueError(f"{where}: every band but the last needs min; the last takes the rest")
    for (upper, high), (lower, low) in pairwise(thresholds):
        if low >= high:
            raise ValueError(
                f"{where}: thresholds must descend: {lower} ({low}) is not below {upper} ({high})"
            )


# --- compiled form ------------------------------------------------------------

Predicate = Callable[[Mapping[str, Any]], bool]
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_SOURCE_CACHE_SIZE = 10_000  # distinct department spellings; a bound, not an expectation


@dataclass(frozen=True, slots=True)
class Span:
    """The stored dates that say a state is in force: begun, `until` not passed, not `removed`."""

    starts: tuple[str, ...]  # the first present one is the start
    until: str | None = None  # last day in force
    removed: str | None = None  # first day no longer in force

    def holds(self, data: Mapping[str, Any], today: str) -> bool:
        # Stored dates are ISO strings, which order as the dates do.
        start = next((data[name] for name in self.starts if data.get(name) is not None), None)
        if start is not None and str(start) > today:
            return False
        until = data.get(self.until) if self.until else None
        if until is not None and str(until) < today:
            return False
        removed = data.get(self.removed) if self.removed else None
        return removed is None or str(removed) > today


IN_FORCE: dict[str, Span] = {
    "red_list": Span(("listed_on",), "valid_until", "removed_on"),
    "black_list": Span(("listed_on",), "valid_until", "removed_on"),
    "judgment_debtor": Span(("filed_on",), None, "removed_on"),
    "license": Span(("valid_from", "decision_date"), "valid_until"),
    "penalty": Span(("decision_date",), "publication_until"),  # still published
    LOAN: Span(("disbursed_on",), None, "ended_on"),  # not yet repaid
}


def _mentions(text: Any, names: tuple[str, ...]) -> bool:
    return isinstance(text, str) and any(name in text for name in names)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None  # NaN cannot be ordered


def _ordered(name: str, compare: Callable[[Any, Any], bool], bound: Any, exact: bool) -> Predicate:
    if exact:  # Decimal fields are stored as strings by normalise()
        limit = Decimal(str(bound))

        def decimal_test(data: Mapping[str, Any]) -> bool:
            value = _decimal(data.get(name))
            return value is not None and compare(value, limit)

        return decimal_test

    def test(data: Mapping[str, Any]) -> bool:
        value = data.get(name)
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and compare(value, bound)
        )

    return test


def _contains(name: str, needles: tuple[str, ...]) -> Predicate:
    def test(data: Mapping[str, Any]) -> bool:
        value = data.get(name)
        items = (value,) if isinstance(value, str) else value if isinstance(value, list) else ()
        return any(isinstance(item, str) and _mentions(item, needles) for item in items)

    return test


def compile_clause(clause: Clause, kind: Kind) -> Predicate:
    name, op, value = clause.field, clause.op, clause.value
    if op == "is_null":
        return lambda data: data.get(name) is None
    if op == "not_null":
        return lambda data: data.get(name) is not None
    if op == "eq":
        return lambda data: bool(data.get(name) == value)
    if op == "ne":
        return lambda data: bool(data.get(name) != value)
    if op in _ORDER:
        return _ordered(name, _ORDER[op], value, exact=kind == "decimal")
    options = value if isinstance(value, list) else [value]
    if op in ("in", "not_in"):
        choices, inside = frozenset(options), op == "in"
        return lambda data: (data.get(name) in choices) is inside
    return _contains(name, tuple(str(option) for option in options))


def _compile_all(clauses: Sequence[Clause], category: str) -> tuple[Predicate, ...]:
    return tuple(compile_clause(c, FIELDS[category][c.field].kind) for c in clauses)


@dataclass(frozen=True, slots=True)
class Rule:
    """One indicator, ready to test records."""

    id: str
    name: str
    department: str
    department_name: str
    match: tuple[str, ...]
    department_in: str | None
    points: int
    max_times: int
    window: int | None
    span: Span | None
    latest_by: str | None
    tests: tuple[Predicate, ...]

    def reason(
        self,
        evidence: Sequence[int | str],
        times: int = 1,
        decider: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """`decider`: the department (key, name) that decided the records, when
        the indicator takes any department's, or the platform of loans."""
        department, name = decider or (self.department, self.department_name)
        return {
            "indicator": self.id,
            "name": self.name,
            "department": department,
            "department_name": name,
            "points": self.points * times,
            "evidence": sorted(evidence),  # ints (records) or strings (loans), never mixed
        }


def _rule(indicator: Indicator, department: Department | None) -> Rule:
    return Rule(
        id=indicator.id,
        name=indicator.name,
        department=indicator.department or "",
        department_name=department.name if department else "",
        match=department.match if department else (),
        # Loans are grouped by their platform, as records of any department by theirs.
        department_in=None if indicator.category == LOAN else indicator.department_in,
        points=indicator.points,
        max_times=indicator.max_times or 1,
        window=indicator.counts_for_days,
        span=IN_FORCE[indicator.category] if indicator.current else None,
        latest_by=indicator.latest_by,
        tests=_compile_all(indicator.when, indicator.category),
    )


def _band(bands: Sequence[Band], value: int) -> str:
    return next(band.label for band in bands if band.min is None or value >= band.min)


def _age_years(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _newest_first(record: ScoredRecord) -> tuple[int, int | str]:
    day = record.effective_date
    # One indicator's records are all records (int ids) or all loans (str ids).
    tie = -record.id if isinstance(record.id, int) else record.id
    return (-(day.toordinal() if day else 0), tie)


def _latest(records: Sequence[ScoredRecord], field: str) -> list[ScoredRecord]:
    values = [r.data.get(field) for r in records]
    present = [v for v in values if v is not None]
    if not present:
        return []
    newest = max(present)
    return [r for r, v in zip(records, values, strict=True) if v == newest]


# --- the model ------------------------------------------------------------------


class ScoreModel:
    """A loaded, compiled model. `score` is pure; one instance serves every request."""

    def __init__(self, spec: ModelFile) -> None:
        self.spec = spec
        self.version = spec.model_version
        self.base = spec.base
        by_category: defaultdict[str, list[Rule]] = defaultdict(list)
        for indicator in spec.indicators:
            department = spec.departments[indicator.department] if indicator.department else None
            rule = _rule(indicator, department)
            by_category[indicator.category].append(rule)
        self._enterprise_rules = tuple(by_category.pop(ENTERPRISE, ()))
        self._rules = {category: tuple(rules) for category, rules in by_category.items()}
        self._source_keys: dict[str, frozenset[str]] = {}

    @classmethod
    def load(cls, path: Path) -> ScoreModel:
        """Read, validate and compile; a bad file raises ValueError naming it and the field."""
        return load_yaml(path, lambda raw: cls(ModelFile.model_validate(raw)))

    def score(
        self, records: Sequence[ScoredRecord], *, as_of: date, enterprise: EnterpriseFacts
    ) -> dict[str, Any]:
        """The score on `as_of` with its reasons, sorted by points then indicator id.

        Not scored (value, grade and risk class None, no reasons) when a
        `not_scored` rule holds, e.g. a deregistered enterprise.
        """
        known = [r for r in records if r.effective_date is None or r.effective_date <= as_of]
        status = ENTERPRISE_STATUSES.get(enterprise.status, enterprise.status)
        refusal = self._not_scored(known, as_of, enterprise.registered_on, status)
        if refusal is not None:
            return self._outcome(None, [], {"code": refusal.code, "reason": refusal.reason})
        reasons = self._enterprise_reasons(known, as_of, enterprise.registered_on, status)
        groups: defaultdict[str, list[ScoredRecord]] = defaultdict(list)
        for record in known:
            groups[record.category].append(record)
        today = as_of.isoformat()
        charged: defaultdict[int | str, list[int]] = defaultdict(list)  # id → negative points
        for category, group in groups.items():
            newest: dict[str, list[ScoredRecord]] = {}
            for rule in self._rules.get(category, ()):
                pool: Sequence[ScoredRecord] = group
                if rule.latest_by is not None:
                    if rule.latest_by not in newest:
                        newest[rule.latest_by] = _latest(group, rule.latest_by)
                    pool = newest[rule.latest_by]
                matched = [r for r in pool if self._holds(rule, r, as_of, today)]
                for decider, decided in self._by_decider(rule, matched):
                    times = min(len(decided), rule.max_times)
                    reasons.append(rule.reason([r.id for r in decided], times, decider))
                    if rule.points < 0:  # the points fall on the newest records counted
                        for record in sorted(decided, key=_newest_first)[:times]:
                            charged[record.id].append(rule.points)
        reasons.extend(self._stacking_caps(charged, known))
        # Ties (one indicator, several departments) in an order the input's does not set.
        reasons.sort(key=lambda r: (r["points"], r["indicator"], r["department"], r["evidence"]))
        return self._outcome(self.base + sum(r["points"] for r in reasons), reasons, None)

    def _holds(self, rule: Rule, record: ScoredRecord, as_of: date, today: str) -> bool:
        # Cheapest and most selective first: most indicators of a category
        # differ by department.
        if rule.department_in == "source_department":
            if rule.department not in self._departments_of(record.source_department):
                return False
        elif rule.department_in is not None and not _mentions(
            record.data.get(rule.department_in), rule.match
        ):
            return False
        if rule.window is not None and (
            record.effective_date is None or (as_of - record.effective_date).days >= rule.window
        ):
            return False
        if rule.span is not None and not rule.span.holds(record.data, today):
            return False
        return all(test(record.data) for test in rule.tests)

    def _by_decider(
        self, rule: Rule, matched: list[ScoredRecord]
    ) -> list[tuple[tuple[str, str] | None, list[ScoredRecord]]]:
        """`matched` per department that decided them, for an indicator of any
        department; else as one group under the indicator's own department."""
        if not matched:
            return []
        if rule.department_in is not None:
            return [(None, matched)]
        by: dict[tuple[str, str], list[ScoredRecord]] = {}
        for record in matched:
            by.setdefault(self._decider_of(record), []).append(record)
        return list(by.items())

    def _decider_of(self, record: ScoredRecord) -> tuple[str, str]:
        if record.category == LOAN:  # the platform that reported the loan
            platform = record.source_department
            return platform, PLATFORM_NAMES.get(platform, platform)
        return self.decider(record.source_department)

    def decider(self, source: str) -> tuple[str, str]:
        """The model's department (key, name) a record's source names: the first
        in the model's order, or the source's own words when it names none."""
        keys = self._departments_of(source)
        for key, department in self.spec.departments.items():
            if key in keys:
                return key, department.name
        return "other", source

    def _stacking_caps(
        self, charged: Mapping[int | str, list[int]], known: Sequence[ScoredRecord]
    ) -> list[dict[str, Any]]:
        cap = self.spec.max_extra_per_record
        if cap is None:
            return []
        by_id = {r.id: r for r in known}
        reasons = []
        for record_id, points in charged.items():
            extra = sum(points) - min(points)
            if extra < -cap:
                key, name = self._decider_of(by_id[record_id])
                reasons.append({
                    "indicator": CAP_REASON[0], "name": CAP_REASON[1], "department": key,
                    "department_name": name, "points": -cap - extra, "evidence": [record_id],
                })  # fmt: skip
        return reasons

    def _departments_of(self, source: str) -> frozenset[str]:
        keys = self._source_keys.get(source)
        if keys is None:
            departments = self.spec.departments.items()
            keys = frozenset(key for key, dept in departments if _mentions(source, dept.match))
            if len(self._source_keys) < _SOURCE_CACHE_SIZE:
                self._source_keys[source] = keys
        return keys

    def _not_scored(
        self, known: Sequence[ScoredRecord], as_of: date, registered_on: date | None, status: str
    ) -> NotScoredRule | None:
        for rule in self.spec.not_scored:
            if rule.status_in is not None and status not in rule.status_in:
                continue
            if rule.registered_within_days is not None and (
                registered_on is None or (as_of - registered_on).days >= rule.registered_within_days
            ):
                continue
            if rule.only_categories is not None and any(
                r.category not in rule.only_categories for r in known
            ):
                continue
            return rule
        return None

    def _enterprise_reasons(
        self, known: Sequence[ScoredRecord], as_of: date, registered_on: date | None, status: str
    ) -> list[dict[str, Any]]:
        facts = {
            "status": status,
            "age_days": None if registered_on is None else (as_of - registered_on).days,
            "age_years": None if registered_on is None else _age_years(registered_on, as_of),
        }
        # The facts come from the registration: it is the evidence.
        evidence = [r.id for r in known if r.category == "registration"]
        return [
            rule.reason(evidence)
            for rule in self._enterprise_rules
            if all(test(facts) for test in rule.tests)
        ]

    def _outcome(
        self, value: int | None, reasons: list[dict[str, Any]], not_scored: dict[str, str] | None
    ) -> dict[str, Any]:
        negative = [dict(r) for r in reasons if r["points"] < 0][:PRINCIPAL_NEGATIVE]
        return {
            "value": value,
            "grade": None if value is None else _band(self.spec.grades, value),
            "risk_class": None if value is None else _band(self.spec.risk_classes, value),
            "model_version": self.version,
            "base": self.base,
            "reasons": reasons,
            "principal_negative_reasons": negative,
            "not_scored": not_scored,
        }
