"""The points model: golden enterprises, time windows, invariants, and broken model files."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.loans.events import BEIJING
from gateway.loans.service import LedgerEvent
from gateway.records.schemas import SCHEMAS
from gateway.reports.loans import scored_loans
from gateway.reports.scoring import (
    FIELDS,
    EnterpriseFacts,
    FieldType,
    ScoredRecord,
    ScoreModel,
)
from testkit.builders import code
from xyd_demo import names

MODEL_FILE = Path(__file__).parents[2] / "config" / "score_model.yaml"
AS_OF = date(2026, 3, 1)
PII_KEY = b"scoring-tests-pii-key-0123456789"
ENV = "成都市生态环境局"
APPROVAL = "成都市行政审批局"
WUHOU_MARKET = "成都市武侯区市场监督管理局"

# What each category requires beyond the identity block, and where it usually comes from.
_REQUIRED: dict[str, dict[str, Any]] = {
    "registration": {"subject_name": "成都测试有限公司", "entity_type": "有限责任公司",
                     "registered_on": "2012-05-10"},
    "license": {"document_number": "成审许〔2024〕1号", "license_category": "普通",
                "decision_date": "2024-01-01", "authority": APPROVAL},
    "penalty": {"decision_number": "成市监罚〔2025〕1号", "penalty_types": "罚款",
                "decision_date": "2025-06-01", "authority": names.MARKET},
    "red_list": {"list_name": "守信激励对象名单", "listing_authority": names.MARKET,
                 "listed_on": "2025-01-01"},
    "black_list": {"list_name": "严重失信主体名单", "listing_authority": names.MARKET,
                   "listed_on": "2025-01-01"},
    "commitment": {"commitment_type": "信用承诺制审批", "made_on": "2025-01-01"},
    "credit_repair": {"repaired_record_id": "PEN-1", "repair_authority": names.MARKET,
                      "effective_on": "2025-10-01"},
    "tax_rating": {"rating_year": 2024, "rating": "B"},
    "social_insurance": {"period": "2026-01"},
    "housing_fund": {"period": "2026-01"},
    "utility": {"utility_type": "电", "period": "2026-01", "billed_fen": 50_000,
                "paid_fen": 50_000},
    "judgment_debtor": {"case_number": "（2025）川01执1号", "court": names.COURT,
                        "filed_on": "2025-06-01"},
}  # fmt: skip
_SOURCES = {
    "registration": names.MARKET, "license": APPROVAL, "penalty": names.MARKET,
    "red_list": names.CREDIT_OFFICE, "black_list": names.CREDIT_OFFICE,
    "commitment": names.CREDIT_OFFICE, "credit_repair": names.CREDIT_OFFICE,
    "tax_rating": names.TAX, "social_insurance": names.HR, "housing_fund": names.HOUSING,
    "utility": names.ELECTRICITY, "judgment_debtor": names.COURT,
}  # fmt: skip


def stored(record_id: int, category: str, source: str | None = None, **fields: Any) -> ScoredRecord:
    """A record as the store holds it: validated by its schema and normalised."""
    department = source or _SOURCES[category]
    row = {
        "record_id": f"{category[:3].upper()}-{record_id}",
        "source_department": department,
        "credit_code": code(1),
        **_REQUIRED[category],
        **fields,
    }
    record = SCHEMAS[category].model_validate(row)
    return ScoredRecord(
        record_id, category, department, record.effective_date(), record.normalise(PII_KEY)
    )


def active(registered_on: date | None) -> EnterpriseFacts:
    return EnterpriseFacts(status="active", registered_on=registered_on)


def summary(result: dict[str, Any]) -> list[tuple[str, int, list[int]]]:
    return [(r["indicator"], r["points"], r["evidence"]) for r in result["reasons"]]


def indicators(result: dict[str, Any]) -> set[str]:
    return {r["indicator"] for r in result["reasons"]}


@pytest.fixture(scope="module")
def model() -> ScoreModel:
    return ScoreModel.load(MODEL_FILE)


# --- golden enterprises -----------------------------------------------------------


def clean_records() -> list[ScoredRecord]:
    return [
        stored(1, "registration", registered_on="2012-05-10"),
        stored(2, "tax_rating", rating_year=2023, rating="B", published_on="2024-04-15"),
        stored(3, "tax_rating", rating_year=2024, rating="A", published_on="2025-04-18"),
        stored(4, "red_list", list_name="纳税信用A级纳税人名单", listing_authority=names.TAX,
               listed_on="2025-05-01", valid_until="2028-04-30"),
        stored(5, "social_insurance", period="2026-01", paid_fen=590_000, headcount=5),
        stored(6, "social_insurance", period="2026-02", paid_fen=590_000, headcount=5),
        stored(7, "utility", utility_type="electricity", period="2026-02"),
        stored(8, "license", certificate_name="食品经营许可证", decision_date="2023-06-01",
               valid_from="2023-06-01", valid_until="2028-05-31"),
        stored(9, "commitment", status="kept", made_on="2024-06-01"),
    ]  # fmt: skip


def troubled_records() -> list[ScoredRecord]:
    return [
        stored(101, "registration", registered_on="2021-08-01"),
        stored(102, "penalty", source=ENV, authority=ENV, decision_number="成环罚〔2025〕88号",
               violation_type="超标排放大气污染物", fine_wan="50", severity="严重",
               decision_date="2025-09-10", publication_until="2028-09-09"),
        stored(103, "black_list", listed_on="2025-10-01", valid_until="2028-09-30"),
        stored(104, "social_insurance", period="2026-01", overdue_months=3, overdue_fen=354_000),
        stored(105, "social_insurance", period="2025-12", overdue_months=2, overdue_fen=236_000),
        stored(106, "judgment_debtor", filed_on="2025-06-01", published_on="2025-07-15",
               performance="全部未履行", dishonest=True, amount_fen=80_000_000),
        stored(107, "tax_rating", rating_year=2024, rating="C", published_on="2025-04-20"),
    ]  # fmt: skip


def test_a_clean_enterprise_with_tax_a_and_a_red_list(model: ScoreModel) -> None:
    result = model.score(clean_records(), as_of=AS_OF, enterprise=active(date(2012, 5, 10)))

    assert summary(result) == [
        ("APR-FOOD-PERMIT", 5, [8]),
        ("PUB-LICENCE-VALID", 5, [8]),
        ("UTL-ELEC-PAID", 5, [7]),
        ("PUB-COMMIT-KEPT", 10, [9]),
        ("HR-SI-PAID", 15, [6]),  # the latest month only
        ("TAX-RED-A", 20, [4]),
        ("PUB-RED", 30, [4]),
        ("ENT-AGE-10Y", 40, [1]),
        ("TAX-A", 60, [3]),  # the latest rating year only: 2023's B does not count
    ]
    assert (result["value"], result["grade"], result["risk_class"]) == (890, "AAA", "低")
    assert result["principal_negative_reasons"] == []
    assert result["not_scored"] is None
    assert result["model_version"] == "xyd-points-2026.3"
    assert result["reasons"][0]["department_name"] == "成都市行政审批局"


def test_a_troubled_enterprise(model: ScoreModel) -> None:
    result = model.score(troubled_records(), as_of=AS_OF, enterprise=active(date(2021, 8, 1)))

    assert summary(result) == [
        ("PUB-BLACK", -150, [103]),
        ("CRT-DISHONEST", -120, [106]),
        ("HR-SI-OVERDUE-3M", -50, [104]),
        ("PUB-PEN-SERIOUS", -40, [102]),
        ("TAX-C", -40, [107]),
        ("ENV-PEN", -30, [102]),
        ("ENV-PEN-SERIOUS", -30, [102]),
        ("CRT-UNPERFORMED", -20, [106]),
        ("ENV-POLLUTION", -20, [102]),
        ("PUB-FINE-100K", -20, [102]),
        ("PUB-FINE-10K", -10, [102]),
        ("ENT-AGE-3Y", 10, [101]),
        ("CAP-RECORD", 80, [102]),  # one penalty: -40 in full, the other -110 held to -30
    ]
    assert (result["value"], result["grade"], result["risk_class"]) == (260, "D", "高")
    principal = [(r["indicator"], r["points"]) for r in result["principal_negative_reasons"]]
    # Ties at -40 are broken by indicator id.
    assert principal == [
        ("PUB-BLACK", -150),
        ("CRT-DISHONEST", -120),
        ("HR-SI-OVERDUE-3M", -50),
        ("PUB-PEN-SERIOUS", -40),
    ]


def test_a_new_enterprise_with_nothing_but_its_registration_is_not_scored(
    model: ScoreModel,
) -> None:
    records = [stored(201, "registration", registered_on="2026-01-10")]

    result = model.score(records, as_of=AS_OF, enterprise=active(date(2026, 1, 10)))

    assert result["not_scored"]["code"] == "NS-INSUFFICIENT"
    assert (result["value"], result["grade"], result["risk_class"]) == (None, None, None)
    assert result["reasons"] == result["principal_negative_reasons"] == []
    assert result["base"] == 700


@pytest.mark.parametrize("status", ["deregistered", "注销", "revoked", "吊销"])
def test_a_closed_enterprise_is_not_scored(model: ScoreModel, status: str) -> None:
    closed = EnterpriseFacts(status=status, registered_on=date(2012, 5, 10))

    result = model.score(clean_records(), as_of=AS_OF, enterprise=closed)

    assert result["not_scored"]["code"] == "NS-DEREGISTERED"
    assert result["value"] is None
    assert result["reasons"] == []


def test_the_result_has_exactly_the_documented_keys(model: ScoreModel) -> None:
    result = model.score(clean_records(), as_of=AS_OF, enterprise=active(date(2012, 5, 10)))

    assert set(result) == {
        "value", "grade", "risk_class", "model_version", "base", "reasons",
        "principal_negative_reasons", "not_scored",
    }  # fmt: skip
    assert set(result["reasons"][0]) == {
        "indicator", "name", "department", "department_name", "points", "evidence",
    }  # fmt: skip


# --- what counts ------------------------------------------------------------------


def test_one_record_one_department_and_its_stacking_capped(model: ScoreModel) -> None:
    result = model.score(troubled_records(), as_of=AS_OF, enterprise=active(date(2021, 8, 1)))

    # Every reason the environment bureau's penalty feeds names that bureau,
    # the public platform's indicators too (not the credit office).
    from_penalty = [r for r in result["reasons"] if r["evidence"] == [102]]
    assert {r["indicator"] for r in from_penalty} >= {"PUB-PEN-SERIOUS", "PUB-FINE-100K"}
    assert {(r["department"], r["department_name"]) for r in from_penalty} == {
        ("ecology", "成都市生态环境局")
    }
    worst = min(r["points"] for r in from_penalty)
    assert sum(r["points"] for r in from_penalty) == worst - 30
    # A record from the credit office itself still names it.
    [black] = [r for r in result["reasons"] if r["indicator"] == "PUB-BLACK"]
    assert black["department"] == "credit_office"


def test_an_indicator_of_any_department_counts_each_departments_records_apart(
    model: ScoreModel,
) -> None:
    def fine(n: int, source: str) -> ScoredRecord:
        return stored(n, "penalty", source=source, authority=source, fine_wan="2",
                      decision_number=f"罚〔2025〕{n}号", decision_date="2025-10-01")  # fmt: skip

    records = [fine(1, ENV), fine(2, ENV), fine(3, names.TAX), fine(4, "成都市水务局")]
    result = model.score(records, as_of=AS_OF, enterprise=active(date(2012, 5, 10)))

    fines = [
        (r["department"], r["department_name"], r["points"], r["evidence"])
        for r in result["reasons"]
        if r["indicator"] == "PUB-FINE-10K"
    ]
    assert sorted(fines) == [
        ("ecology", "成都市生态环境局", -20, [1, 2]),
        ("other", "成都市水务局", -10, [4]),  # a department the model does not list
        ("tax", "国家税务总局成都市税务局", -10, [3]),
    ]


@pytest.mark.parametrize(
    ("days_ago", "counts"),
    [(0, True), (1094, True), (1095, False), (-1, False)],  # -1: not yet known on as_of
)
def test_a_fine_counts_for_three_years(model: ScoreModel, days_ago: int, counts: bool) -> None:
    decided = (AS_OF - timedelta(days=days_ago)).isoformat()
    # From a department with no indicators of its own, without severity: only the fine counts.
    fine = stored(301, "penalty", source="成都市水务局", authority="成都市水务局",
                  fine_wan="1", decision_date=decided)  # fmt: skip

    result = model.score([fine], as_of=AS_OF, enterprise=active(date(2012, 5, 10)))

    assert ("PUB-FINE-10K" in indicators(result)) is counts


@pytest.mark.parametrize(
    ("fields", "listed"),
    [
        ({"removed_on": AS_OF - timedelta(days=1)}, False),
        ({"removed_on": AS_OF}, False),
        ({"removed_on": AS_OF + timedelta(days=1)}, True),
        ({"valid_until": AS_OF - timedelta(days=1)}, False),
        ({"valid_until": AS_OF}, True),
        ({"listed_on": AS_OF + timedelta(days=1)}, False),
    ],
)
def test_a_black_list_entry_counts_while_it_is_in_force(
    model: ScoreModel, fields: dict[str, date], listed: bool
) -> None:
    entry = stored(401, "black_list", **{k: v.isoformat() for k, v in fields.items()})

    result = model.score([entry], as_of=AS_OF, enterprise=active(date(2012, 5, 10)))

    assert ("PUB-BLACK" in indicators(result)) is listed


def test_per_record_points_are_capped(model: ScoreModel) -> None:
    penalties = [
        stored(700 + n, "penalty", decision_number=f"成市监罚〔2025〕{n}号", severity="一般",
               decision_date=f"2025-{n + 4:02d}-01")
        for n in range(1, 6)
    ]  # fmt: skip

    result = model.score(penalties, as_of=AS_OF, enterprise=active(date(2012, 5, 10)))

    mkt = next(r for r in result["reasons"] if r["indicator"] == "MKT-PEN")
    assert mkt["points"] == -10 * 3
    assert mkt["evidence"] == [701, 702, 703, 704, 705]


def test_an_old_enterprise_with_only_its_registration_is_not_scored(model: ScoreModel) -> None:
    result = model.score(
        [stored(801, "registration")], as_of=AS_OF, enterprise=active(date(2012, 5, 10))
    )

    assert result["not_scored"]["code"] == "NS-NO-RECORDS"


# --- platform loans ------------------------------------------------------------------


def on_day(day: date, hour: int = 10) -> datetime:
    """`hour` o'clock in Beijing on `day`, as the ledger stores it (UTC)."""
    return datetime.combine(day, time(hour), BEIJING).astimezone(UTC)


def loan_event(
    kind: str, day: date, loan_no: str = "KCT-1", platform: str = "kechuangtong", **fields: Any
) -> LedgerEvent:
    values: dict[str, Any] = {"amount_fen": None, "days_overdue": None, **fields}
    return LedgerEvent(platform, loan_no, kind, on_day(day), **values)


def lent(days_ago: int = 200, **fields: Any) -> LedgerEvent:
    return loan_event("loan_disbursed", AS_OF - timedelta(days=days_ago), amount_fen=50_000_000,
                      **fields)  # fmt: skip


def late(days: int, days_ago: int = 1, **fields: Any) -> LedgerEvent:
    return loan_event("repayment_overdue", AS_OF - timedelta(days=days_ago), days_overdue=days,
                      **fields)  # fmt: skip


def with_loans(model: ScoreModel, *events: LedgerEvent, on: date = AS_OF) -> dict[str, Any]:
    """A clean enterprise's score with these loan events, as of `on`."""
    records = [*clean_records(), *scored_loans(events, on)]
    return model.score(records, as_of=on, enterprise=active(date(2012, 5, 10)))


def loan_reasons(result: dict[str, Any]) -> list[tuple[str, str, str, int, list[Any]]]:
    return [
        (r["indicator"], r["department"], r["department_name"], r["points"], r["evidence"])
        for r in result["reasons"]
        if r["indicator"].startswith("LOAN-")
    ]


@pytest.mark.parametrize(
    ("days", "indicator", "points"),
    [
        (1, "LOAN-OVERDUE-1D", -15), (30, "LOAN-OVERDUE-1D", -15),
        (31, "LOAN-OVERDUE-31D", -40), (60, "LOAN-OVERDUE-31D", -40),
        (61, "LOAN-OVERDUE-61D", -70), (90, "LOAN-OVERDUE-61D", -70),
        (91, "LOAN-OVERDUE-90D", -100), (400, "LOAN-OVERDUE-90D", -100),
    ],
)  # fmt: skip
def test_a_loan_overdue_now_costs_by_its_days_bucket(
    model: ScoreModel, days: int, indicator: str, points: int
) -> None:
    clean = with_loans(model)
    result = with_loans(model, lent(), late(days))

    assert loan_reasons(result) == [
        (indicator, "kechuangtong", "科创通", points, ["kechuangtong:KCT-1"])
    ]
    assert result["value"] == clean["value"] + points
    assert result["value"] == result["base"] + sum(r["points"] for r in result["reasons"])


def test_a_loan_overdue_then_repaid_is_overdue_no_more(model: ScoreModel) -> None:
    repaid = loan_event("repayment_received", AS_OF, amount_fen=1_000_000)

    assert loan_reasons(with_loans(model, lent(), late(45, 10), repaid)) == []
    # Sixty days and more stays on file as past overdue, though cured.
    cured = with_loans(model, lent(), late(75, 10), repaid)
    assert loan_reasons(cured) == [
        ("LOAN-PAST-OVERDUE", "kechuangtong", "科创通", -20, ["kechuangtong:KCT-1"])
    ]


def test_a_defaulted_loan_counts_as_a_default_only(model: ScoreModel) -> None:
    defaulted = loan_event("loan_defaulted", AS_OF - timedelta(days=1))

    result = with_loans(model, lent(), late(30, 60), late(90, 2), defaulted)

    # Its status is `defaulted`, 90 days late: no overdue bucket on top.
    assert loan_reasons(result) == [
        ("LOAN-DEFAULT", "kechuangtong", "科创通", -150, ["kechuangtong:KCT-1"])
    ]
    assert result["principal_negative_reasons"][0]["indicator"] == "LOAN-DEFAULT"


@pytest.mark.parametrize(("days_since", "counts"), [(0, True), (1825, True), (1826, False)])
def test_a_default_counts_five_years_after_the_loan_ended(
    model: ScoreModel, days_since: int, counts: bool
) -> None:
    on = AS_OF + timedelta(days=days_since)
    events = (
        lent(300),
        loan_event("loan_defaulted", AS_OF - timedelta(days=100)),
        loan_event("loan_settled", AS_OF),  # paid off at last: the record ends today
    )

    result = with_loans(model, *events, on=on)

    assert ("LOAN-DEFAULT" in indicators(result)) is counts
    assert "LOAN-REPAID" not in indicators(result)


def test_a_default_never_settled_counts_however_old(model: ScoreModel) -> None:
    events = (lent(4000), loan_event("loan_defaulted", AS_OF - timedelta(days=3000)))

    assert "LOAN-DEFAULT" in indicators(with_loans(model, *events))


def test_loans_repaid_on_time_add_a_little_for_two_at_most(model: ScoreModel) -> None:
    def repaid(n: int, days_ago: int) -> list[LedgerEvent]:
        return [
            lent(days_ago + 365, loan_no=f"KCT-{n}"),
            loan_event("loan_settled", AS_OF - timedelta(days=days_ago), loan_no=f"KCT-{n}"),
        ]

    result = with_loans(model, *repaid(1, 10), *repaid(2, 20), *repaid(3, 30))
    assert loan_reasons(result) == [
        ("LOAN-REPAID", "kechuangtong", "科创通", 10,
         ["kechuangtong:KCT-1", "kechuangtong:KCT-2", "kechuangtong:KCT-3"]),
    ]  # fmt: skip
    # Once late, even a day, a settled loan earns nothing; three years on, neither.
    assert loan_reasons(with_loans(model, *repaid(1, 10), late(3, 200, loan_no="KCT-1"))) == []
    assert loan_reasons(with_loans(model, *repaid(1, 1095))) == []


def test_each_platform_is_named_for_its_own_loans(model: ScoreModel) -> None:
    events = (
        lent(), late(40),
        lent(loan_no="NDT-9", platform="nongdaitong"),
        late(40, loan_no="NDT-9", platform="nongdaitong"),
        lent(loan_no="XX-1", platform="elsewhere"), late(40, loan_no="XX-1", platform="elsewhere"),
    )  # fmt: skip

    assert sorted(loan_reasons(with_loans(model, *events))) == [
        ("LOAN-OVERDUE-31D", "elsewhere", "elsewhere", -40, ["elsewhere:XX-1"]),
        ("LOAN-OVERDUE-31D", "kechuangtong", "科创通", -40, ["kechuangtong:KCT-1"]),
        ("LOAN-OVERDUE-31D", "nongdaitong", "农贷通", -40, ["nongdaitong:NDT-9"]),
    ]


def test_a_loan_is_scored_as_it_stood_on_the_day(model: ScoreModel) -> None:
    events = (lent(200), late(40, 100), loan_event("loan_defaulted", AS_OF - timedelta(days=10)))

    assert loan_reasons(with_loans(model, *events, on=AS_OF - timedelta(days=150))) == []
    then = with_loans(model, *events, on=AS_OF - timedelta(days=50))
    assert [r[0] for r in loan_reasons(then)] == ["LOAN-OVERDUE-31D"]
    assert [r[0] for r in loan_reasons(with_loans(model, *events))] == ["LOAN-DEFAULT"]
    # The day ends at Beijing midnight: an event at 23:30 there counts that day.
    night = LedgerEvent(
        "kechuangtong", "KCT-1", "loan_defaulted",
        datetime.combine(AS_OF - timedelta(days=60), time(23, 30), BEIJING), None, None,
    )  # fmt: skip
    assert [
        r[0] for r in loan_reasons(with_loans(model, lent(200), night, on=night.occurred_at.date()))
    ] == ["LOAN-DEFAULT"]
    day_before = night.occurred_at.date() - timedelta(days=1)
    assert loan_reasons(with_loans(model, lent(200), night, on=day_before)) == []


def test_applications_and_refusals_are_no_debts(model: ScoreModel) -> None:
    events = (
        loan_event("application_submitted", AS_OF - timedelta(days=30), amount_fen=1_000_000),
        loan_event("loan_rejected", AS_OF - timedelta(days=20)),
    )

    assert scored_loans(events, AS_OF) == []
    assert with_loans(model, *events) == with_loans(model)


def test_an_enterprise_with_a_loan_besides_its_registration_is_scored(model: ScoreModel) -> None:
    registered = [stored(801, "registration")]
    loans = scored_loans((lent(), late(40)), AS_OF)

    result = model.score([*registered, *loans], as_of=AS_OF, enterprise=active(date(2012, 5, 10)))

    assert result["not_scored"] is None
    assert {"LOAN-OVERDUE-31D", "ENT-AGE-10Y"} <= indicators(result)


# --- invariants over random record sets --------------------------------------------

_WORDS = (
    "罚款", "警告", "吊销营业执照", "没收违法所得", "责令停产停业", "严重失信主体名单",
    "纳税信用A级纳税人名单", "守合同重信用", "拖欠农民工工资", "高级认证", "超标排放", "走私",
    "排污许可证", "食品经营许可证", "道路运输", names.MARKET, names.TAX, "海关",
)  # fmt: skip
_DEPARTMENTS = (
    *(name for name, _ in names.DISTRICT_MARKET.values()),
    *names.DEPARTMENTS,
    "某未知单位",
)
_DAYS = st.dates(AS_OF - timedelta(days=6 * 365), AS_OF + timedelta(days=400))
_RECORD_IDS = st.sampled_from(("R-1", "R-2", "R-3"))


def _values(name: str, ftype: FieldType) -> st.SearchStrategy[Any]:
    if name in ("record_id", "repaired_record_id"):
        return _RECORD_IDS  # few, so repairs find their records
    if name in ("repaired_source_department", "listing_authority"):
        return st.sampled_from(_DEPARTMENTS)
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "choice": st.sampled_from(sorted(ftype.choices, key=str)),
        "flag": st.booleans(),
        "number": st.integers(0, 200_000_000) | st.integers(0, 12),
        "decimal": st.decimals(0, 100, places=1).map(str),
        "text": st.sampled_from(_WORDS) | st.text(max_size=4),
        "date": _DAYS.map(date.isoformat),
        "list": st.lists(st.sampled_from(_WORDS), max_size=3),
    }
    return strategies[ftype.kind]


_DATA = {
    category: st.fixed_dictionaries(
        {}, optional={name: _values(name, ftype) for name, ftype in FIELDS[category].items()}
    )
    for category in [*SCHEMAS, "loan"]
}
_PLATFORMS = ("kechuangtong", "nongdaitong", "yingchuang", "elsewhere")


@st.composite
def record_sets(draw: st.DrawFn) -> list[ScoredRecord]:
    ids = draw(st.lists(st.integers(1, 10**9), max_size=30, unique=True))
    records = []
    for record_id in ids:
        category = draw(st.sampled_from(sorted(SCHEMAS)))
        records.append(
            ScoredRecord(
                id=record_id,
                category=category,
                source_department=draw(st.sampled_from(_DEPARTMENTS)),
                effective_date=draw(st.none() | _DAYS),
                data=draw(_DATA[category]),
            )
        )
    loan_nos = draw(st.lists(st.sampled_from(("L-1", "L-2", "L-3")), max_size=3, unique=True))
    for loan_no in loan_nos:  # cited as strings, beside the records' ints
        platform = draw(st.sampled_from(_PLATFORMS))
        records.append(
            ScoredRecord(
                id=f"{platform}:{loan_no}",
                category="loan",
                source_department=platform,
                effective_date=draw(_DAYS),
                data=draw(_DATA["loan"]),
            )
        )
    return records


_FACTS = st.builds(
    EnterpriseFacts,
    status=st.sampled_from(("active", "active", "suspended", "deregistered", "moved_out", "存续")),
    registered_on=st.none() | st.dates(AS_OF - timedelta(days=40 * 365), AS_OF),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=record_sets(), facts=_FACTS, data=st.data())
def test_the_score_is_always_base_plus_its_reasons(
    model: ScoreModel, records: list[ScoredRecord], facts: EnterpriseFacts, data: st.DataObject
) -> None:
    result = model.score(records, as_of=AS_OF, enterprise=facts)

    reasons, principal = result["reasons"], result["principal_negative_reasons"]
    if result["value"] is None:
        assert result["not_scored"] is not None
        assert reasons == principal == []
        assert result["grade"] is None
        return
    assert result["base"] + sum(r["points"] for r in reasons) == result["value"]
    ids = {r.id for r in records}
    assert all(set(r["evidence"]) <= ids for r in reasons)
    assert all(r["points"] != 0 for r in reasons)
    assert reasons == sorted(reasons, key=lambda r: (r["points"], r["indicator"]))
    for reason in reasons:  # one reason cites records or loans, never both
        assert len({type(i) for i in reason["evidence"]}) <= 1
    assert len(principal) <= 4
    assert all(r in reasons and r["points"] < 0 for r in principal)
    shuffled = data.draw(st.permutations(records))
    assert model.score(shuffled, as_of=AS_OF, enterprise=facts) == result


# --- the model file -----------------------------------------------------------------


def test_the_shipped_model_loads(model: ScoreModel) -> None:
    spec = model.spec
    assert len(spec.indicators) >= 40
    assert len({indicator.department for indicator in spec.indicators}) >= 10
    assert len({indicator.id for indicator in spec.indicators}) == len(spec.indicators)


def _raw() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(MODEL_FILE.read_text(encoding="utf-8"))
    return raw


def _indicator(raw: dict[str, Any], indicator_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in raw["indicators"] if i["id"] == indicator_id)
    return found


def _break_department(raw: dict[str, Any]) -> None:
    _indicator(raw, "TAX-A")["department"] = "taxes"


def _break_category(raw: dict[str, Any]) -> None:
    _indicator(raw, "MKT-PEN")["category"] = "penalti"


def _break_op(raw: dict[str, Any]) -> None:
    _indicator(raw, "TAX-A")["when"][0]["op"] = "equals"


def _break_field(raw: dict[str, Any]) -> None:
    _indicator(raw, "TAX-A")["when"][0]["field"] = "ratng"


def _break_value(raw: dict[str, Any]) -> None:
    _indicator(raw, "PUB-PEN-SERIOUS")["when"][0]["value"] = "serios"


def _break_op_kind(raw: dict[str, Any]) -> None:
    _indicator(raw, "PUB-BLACK")["when"] = [{"field": "list_name", "op": "gte", "value": 3}]


def _duplicate(raw: dict[str, Any]) -> None:
    raw["indicators"].append(dict(_indicator(raw, "TAX-B")))


def _grades_ascend(raw: dict[str, Any]) -> None:
    raw["grades"][1]["min"] = raw["grades"][0]["min"] + 10


def _too_few(raw: dict[str, Any]) -> None:
    raw["indicators"] = raw["indicators"][:39]


def _one_department(raw: dict[str, Any]) -> None:
    raw["indicators"] = [i for i in raw["indicators"] if i.get("department") == "credit_office"]
    raw["indicators"] += [{**i, "id": f"PUB-COPY-{n}"} for n, i in enumerate(raw["indicators"] * 3)]


def _misspelt_key(raw: dict[str, Any]) -> None:
    _indicator(raw, "TAX-A")["pionts"] = _indicator(raw, "TAX-A").pop("points")


def _zero_points(raw: dict[str, Any]) -> None:
    _indicator(raw, "TAX-B")["points"] = 0


def _forever(raw: dict[str, Any]) -> None:
    del _indicator(raw, "MKT-PEN")["counts_for_days"]


def _current_tax(raw: dict[str, Any]) -> None:
    _indicator(raw, "TAX-A")["current"] = True


def _unknown_status(raw: dict[str, Any]) -> None:
    raw["not_scored"][0]["status_in"] = ["closed"]


def _loan_with_department(raw: dict[str, Any]) -> None:
    _indicator(raw, "LOAN-DEFAULT")["department"] = "credit_office"


def _no_department(raw: dict[str, Any]) -> None:
    del _indicator(raw, "TAX-A")["department"]


def _loan_field(raw: dict[str, Any]) -> None:
    _indicator(raw, "LOAN-DEFAULT")["when"][0]["field"] = "days_late"


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (_break_department, "unknown department 'taxes'"),
        (_break_category, "unknown category 'penalti'"),
        (_break_op, "when.0.op"),
        (_break_field, "'ratng' is not a field"),
        (_break_value, "'serios' is not valid for severity"),
        (_break_op_kind, "gte does not apply to list_name"),
        (_duplicate, "duplicate id TAX-B"),
        (_grades_ascend, "thresholds must descend"),
        (_too_few, "needs at least 40"),
        (_one_department, "from 1 departments"),
        (_misspelt_key, "pionts"),
        (_zero_points, "TAX-B: points: 0"),
        (_forever, "MKT-PEN: counts_for_days: required"),
        (_current_tax, "tax_rating has no in-force dates"),
        (_unknown_status, "unknown status ['closed']"),
        (_loan_with_department, "LOAN-DEFAULT: department: a loan's reasons name the platform"),
        (_no_department, "TAX-A: department: required"),
        (_loan_field, "'days_late' is not a field"),
    ],
)
def test_a_broken_model_stops_start_up_naming_the_problem(
    tmp_path: Path, breaks: Any, message: str
) -> None:
    raw = _raw()
    breaks(raw)
    path = tmp_path / "score_model.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    with pytest.raises(ValueError, match=r"score_model\.yaml") as raised:
        ScoreModel.load(path)

    assert message in str(raised.value)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("text", ["indicators: [", "just a string", ""])
def test_a_file_that_is_not_a_model_stops_start_up(tmp_path: Path, text: str) -> None:
    path = tmp_path / "score_model.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ValueError, match=r"score_model\.yaml"):
        ScoreModel.load(path)


def test_a_missing_file_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nowhere\.yaml"):
        ScoreModel.load(tmp_path / "nowhere.yaml")
