"""Building a report from hand-made records: exact sections, score, completeness."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gateway.app import create_app
from gateway.keys import jose
from gateway.keys.store import LoadedKey
from gateway.loans.service import LedgerEvent
from gateway.reports import signing
from gateway.reports.build import (
    CLOSING_FROM,
    OPENING_UP_TO,
    ReportBuilder,
    consent_cut,
    quarter_ends_before,
    request_members,
    stale_at,
)
from gateway.reports.repository import StoredRecord
from gateway.settings import Settings

CONFIG = Path(__file__).resolve().parents[2] / "config"
NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)  # 12:00 in Chengdu
CODE = "91510104MA6CGUGA1W"
ENV, MARKET, TAX, CREDIT = (
    "成都市生态环境局",
    "成都市市场监督管理局",
    "国家税务总局成都市税务局",
    "成都市发展和改革委员会",
)


def rec(n: int, category: str, department: str, effective: str | None, **data: Any) -> StoredRecord:
    return StoredRecord(
        id=n,
        category=category,
        source_department=department,
        source_record_id=f"S-{n}",
        subject_kind=data.pop("subject_kind", "legal_person"),
        version=1,
        effective_date=date.fromisoformat(effective) if effective else None,
        updated_at=NOW - timedelta(days=1),
        data={"credit_code": CODE, "record_id": f"S-{n}", **data},
    )


def penalty(n: int, decided: str, **data: Any) -> StoredRecord:
    fields = {
        "decision_number": f"成环罚〔2026〕{n}号", "penalty_types": ["罚款"], "fine_fen": 2_000_000,
        "procedure": "general", "severity": "general", "party_category": "legal_person",
        "decision_date": decided, "authority": ENV, "legal_rep_masked": "张*",
        "legal_rep_hash": "h" * 64,
    }  # fmt: skip
    fields.update(data)
    return rec(n, "penalty", fields.pop("department", ENV), decided, **fields)


ENTERPRISE = {
    "credit_code": CODE, "name": "成都测试环保科技有限公司", "entity_type": "limited_company",
    "division_code": "510104", "legal_rep_masked": "张*", "registered_on": date(2015, 3, 1),
    "status": "active", "registered_capital_fen": 100_000_000, "industry_code": "C2661",
    "data_version": 7, "updated_at": NOW - timedelta(days=2),
}  # fmt: skip
RECORDS = [
    rec(1, "registration", MARKET, "2015-03-01", subject_name=ENTERPRISE["name"]),
    penalty(2, "2026-06-01"),  # general: shown until 2027-05-31
    penalty(3, "2026-06-02", procedure="simple"),  # simple procedure: never
    penalty(4, "2026-06-03", party_category="natural_person", subject_kind="natural_person"),
    penalty(5, "2025-01-10"),  # general, twelve months ended 2026-01-10
    penalty(6, "2025-12-01", severity="serious"),  # repaired (2019 rules: after 6 months)
    rec(
        7,
        "credit_repair",
        CREDIT,
        "2026-07-01",
        repaired_category="penalty",
        repaired_record_id="S-6",
        repair_authority=CREDIT,
        effective_on="2026-07-01",
        status="approved",
    ),
    rec(
        8,
        "black_list",
        CREDIT,
        "2026-02-01",
        list_name="严重失信主体名单",
        listing_authority=CREDIT,
        listed_on="2026-02-01",
        removed_on="2026-10-01",
    ),
    rec(
        9,
        "red_list",
        CREDIT,
        "2026-01-05",
        list_name="守信激励对象名单",
        listing_authority=CREDIT,
        listed_on="2026-01-05",
    ),
    rec(10, "tax_rating", TAX, "2026-04-20", rating_year=2025, rating="A"),
]
FEEDS = {
    "registration": NOW - timedelta(days=3), "penalty": NOW - timedelta(days=2),
    "tax_rating": NOW - timedelta(days=500), "red_list": NOW - timedelta(days=1),
}  # fmt: skip


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return ReportBuilder.load(CONFIG).build(ENTERPRISE, RECORDS, FEEDS, NOW)


def ids(report: dict[str, Any], section: str) -> list[int]:
    return [item["record_id"] for item in report["sections"][section]["items"]]


def test_exact_sections_under_the_publication_rules(report: dict[str, Any]) -> None:
    assert ids(report, "basic") == [1]
    assert ids(report, "penalties") == [2]
    assert ids(report, "lists") == [9]
    assert ids(report, "tax") == [10]
    assert all(ids(report, s) == [] for s in ("licenses", "judicial", "utilities", "loans"))
    [shown] = report["sections"]["penalties"]["items"]
    assert shown["published_until"] == "2027-05-31"
    assert shown["publication_rule_set"].startswith("信用修复管理办法")
    assert shown["source_department"] == ENV
    assert shown["data_as_of"] == (NOW - timedelta(days=1)).isoformat()
    assert "legal_rep_hash" not in shown
    assert shown["legal_rep_masked"] == "张*"
    assert report["sections"]["basic"]["enterprise"]["registered_on"] == "2015-03-01"
    assert report["as_of_date"] == "2026-11-27"


def test_the_score_draws_only_on_what_the_report_shows(report: dict[str, Any]) -> None:
    score = report["score"]
    assert score["value"] == score["base"] + sum(r["points"] for r in score["reasons"])
    evidence = {i for r in score["reasons"] for i in r["evidence"]}
    shown = {i for s in report["sections"] for i in ids(report, s)}
    assert evidence <= shown
    assert 2 in evidence and 10 in evidence and 9 in evidence
    assert 6 not in evidence and 8 not in evidence  # repaired, removed
    assert [t["quarter"] for t in report["score_trend"]] == ["2025Q4", "2026Q1", "2026Q2", "2026Q3"]
    # 2026Q2 ends 2026-06-30: the serious penalty (repair honoured only from 07-01)
    # still counted then; by 2026Q3 it no longer does.
    q2, q3 = report["score_trend"][2], report["score_trend"][3]
    assert q2["value"] < q3["value"]


def test_completeness_says_why(report: dict[str, Any]) -> None:
    state = report["completeness"]
    assert state["penalties"]["status"] == "complete"
    # Delivered and current, so an empty section means nothing held, not "not delivered":
    assert (
        "feeds delivered and current (last complete feed: penalty 20"
        in (state["penalties"]["reason"])
    )
    assert state["tax"]["status"] == "partial"
    assert "older than 400 days" in state["tax"]["reason"]
    assert state["lists"]["status"] == "partial"  # red list fed, black list never
    assert "black_list" in state["lists"]["reason"]
    assert state["judicial"]["status"] == "unavailable"
    assert state["loans"] == {"status": "unavailable", "reason": "no data source is connected yet"}


def test_for_consent_withholds_other_sections_and_their_evidence(report: dict[str, Any]) -> None:
    shared = consent_cut(report, frozenset({"basic", "tax"}))
    own = own_members("cns_1")
    cut = {**shared, **own}
    assert (cut["report_id"], cut["consent_id"]) == ("rpt_1", "cns_1")
    assert "report_id" not in shared  # the shared cut is never written to
    assert set(cut["sections"]) == {"basic", "tax"}
    assert "penalties" in cut["sections_not_consented"]
    evidence = {i for r in cut["score"]["reasons"] for i in r["evidence"]}
    assert evidence <= {1, 10}
    withheld = [r for r in cut["score"]["reasons"] if r.get("evidence_withheld")]
    assert withheld  # the penalty's reason stays (the sum holds) without its record
    assert cut["score"]["value"] == report["score"]["value"]


def test_quarter_ends() -> None:
    assert quarter_ends_before(date(2026, 11, 27)) == [
        date(2025, 12, 31), date(2026, 3, 31), date(2026, 6, 30), date(2026, 9, 30),
    ]  # fmt: skip
    assert quarter_ends_before(date(2026, 1, 1))[-1] == date(2025, 12, 31)
    assert quarter_ends_before(date(2026, 4, 1))[-1] == date(2026, 3, 31)


@pytest.mark.parametrize("name", ["score_model.yaml", "publication.yaml", "report.yaml"])
def test_a_bad_rules_file_stops_start_up(tmp_path: Path, name: str) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    (config / name).write_text("model_version: [\n")
    with pytest.raises(ValueError, match=name):
        create_app(Settings(state_dir=tmp_path / ".xyd", config_dir=config))


def test_the_latest_repair_decision_wins_and_departments_must_match() -> None:
    builder = ReportBuilder.load(CONFIG)
    withdrawn = rec(
        11, "credit_repair", CREDIT, "2026-08-01", repaired_category="penalty",
        repaired_record_id="S-6", repair_authority=CREDIT, effective_on="2026-08-01",
        status="withdrawn",
    )  # fmt: skip
    back = builder.build(ENTERPRISE, [*RECORDS, withdrawn], FEEDS, NOW)
    assert ids(back, "penalties") == [2, 6]
    elsewhere = rec(
        12, "credit_repair", CREDIT, "2026-07-01", repaired_category="penalty",
        repaired_record_id="S-2", repaired_source_department=MARKET, repair_authority=CREDIT,
        effective_on="2026-07-01", status="approved",
    )  # fmt: skip
    # S-2 came from the environment bureau: a repair of market regulation's S-2 is not its own.
    other = builder.build(ENTERPRISE, [*RECORDS, elsewhere], FEEDS, NOW)
    assert ids(other, "penalties") == [2]


def test_loans_section_from_the_ledger_once_a_platform_is_connected() -> None:
    builder = ReportBuilder.load(CONFIG)
    ledger = [{"platform": "kechuangtong", "loan_no": "KCT-1", "status": "overdue"}]
    connected = builder.build(ENTERPRISE, RECORDS, FEEDS, NOW, None, ledger)
    assert connected["sections"]["loans"]["items"] == ledger
    assert connected["completeness"]["loans"]["status"] == "complete"
    empty = builder.build(ENTERPRISE, RECORDS, FEEDS, NOW, None, [])
    assert empty["completeness"]["loans"] == {  # connected, no loans: not "not delivered"
        "status": "complete",
        "reason": "platform ledger connected; every loan shown",
    }
    assert builder.build(ENTERPRISE, RECORDS, FEEDS, NOW)["completeness"]["loans"]["status"] == (
        "unavailable"
    )


def test_a_consent_covering_loans_cuts_a_report_holding_ledger_rows() -> None:
    # Ledger rows carry no record id: the cut once raised KeyError, a 500 per report.
    builder = ReportBuilder.load(CONFIG)
    ledger = [{"platform": "kechuangtong", "loan_no": "KCT-1", "status": "overdue"}]
    full = builder.build(ENTERPRISE, RECORDS, FEEDS, NOW, None, ledger)
    cut = consent_cut(full, frozenset({"basic", "penalties", "loans"}))
    assert cut["sections"]["loans"]["items"] == ledger


def test_the_canonical_form_joined_from_members_is_the_whole_reports(
    report: dict[str, Any],
) -> None:
    shared = consent_cut(report, frozenset({"basic", "tax", "penalties"}))
    own = own_members("cns_1")
    whole = {**shared, **own}
    parts = {**signing.members(shared), **signing.members(own)}
    assert signing.joined(parts) == signing.canonical(whole)
    assert orjson.loads(signing.joined(parts)) == whole
    # The JSON answer: the same members and `signature`, still canonical.
    with_signature = {**parts, "signature": orjson.dumps("h..s")}
    assert signing.joined(with_signature) == signing.canonical({**whole, "signature": "h..s"})


@pytest.mark.parametrize("consent_id", ["c", "cn", "cns", "cns_1", "cns_12", "cns_123"])
def test_the_signed_answer_from_an_encoded_tail_is_the_whole_reports(
    report: dict[str, Any], consent_id: str
) -> None:
    """Each consent id length puts the opening at another byte alignment."""
    private = ec.generate_private_key(ec.SECP256R1())
    key = LoadedKey("k1", "report", "ES256", private.public_key(), private, {}, NOW, None)
    shared = consent_cut(report, frozenset({"basic", "tax", "penalties"}))
    own = own_members(consent_id)
    head, tail = signing.split(signing.members(shared), after=OPENING_UP_TO, before=CLOSING_FROM)
    assert tail.names[:3] == ("score", "score_trend", "sections")  # the bulk is encoded once
    body, sent = signing.signed_json({**head, **signing.members(own)}, tail, key)
    answer = orjson.loads(body)
    detached = answer.pop("signature")
    assert detached == sent
    assert answer == {**shared, **own}
    assert list(answer)[-1] == "valid_until"  # a request's member after the encoded tail
    assert body == signing.canonical({**answer, "signature": detached})
    protected, _, signature = detached.split(".")
    raw = jose.b64decode(signature)
    payload = jose.b64encode(signing.canonical(answer))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    private.public_key().verify(der, f"{protected}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))


def test_a_short_tail_is_encoded_whole() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = LoadedKey("k1", "report", "ES256", private.public_key(), private, {}, NOW, None)
    for opening in ("a", "ab", "abc"):
        for shared in ({}, {"s": b"1"}):
            head, tail = signing.split(shared, after="report_id", before="valid_until")
            parts = {**head, "a": b'"%s"' % opening.encode(), "z": b"2"}
            body, _ = signing.signed_json(parts, tail, key)
            answer = orjson.loads(body)
            assert answer == {"a": opening, "z": 2, "signature": answer["signature"]} | (
                {"s": 1} if shared else {}
            )
            assert body == signing.json_again({**parts, **shared}, orjson.loads(body)["signature"])


def own_members(consent_id: str, stale: datetime | None = None) -> dict[str, Any]:
    return request_members(
        consent_id=consent_id, purpose="credit_review", report_id="rpt_1", generated_at=NOW,
        client_id="bank-a", org_code="BOCD", stale_at=stale,
    )  # fmt: skip


def test_the_recipient_and_valid_until_are_the_requests_own_members() -> None:
    own = own_members("cns_1")
    assert own["recipient"] == {"client_id": "bank-a", "org_code": "BOCD"}
    assert own["valid_until"] == (NOW + timedelta(days=30)).isoformat()
    sooner = NOW + timedelta(days=3)
    assert own_members("cns_1", sooner)["valid_until"] == sooner.isoformat()
    assert own_members("cns_1", NOW + timedelta(days=90))["valid_until"] == own["valid_until"]


def test_a_cut_is_stale_from_the_day_after_a_shown_record_stops_being_published(
    report: dict[str, Any],
) -> None:
    cut = consent_cut(report, frozenset({"basic", "penalties"}))
    ends = [
        i["published_until"]
        for i in cut["sections"]["penalties"]["items"]
        if "published_until" in i
    ]
    assert ends
    day_after = date.fromisoformat(min(ends)) + timedelta(days=1)
    # Midnight in Chengdu, 16:00 UTC the day before.
    assert stale_at(cut) == datetime.combine(day_after, datetime.min.time(), UTC) - timedelta(
        hours=8
    )
    assert stale_at(consent_cut(report, frozenset({"basic"}))) is None


def test_either_signed_form_is_rebuilt_byte_for_byte_from_members_and_signature(
    report: dict[str, Any],
) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = LoadedKey("k1", "report", "ES256", private.public_key(), private, {}, NOW, None)
    shared = signing.members(consent_cut(report, frozenset({"basic", "penalties"})))
    own = signing.members(own_members("cns_1"))
    head, tail = signing.split(shared, after=OPENING_UP_TO, before=CLOSING_FROM)
    body, detached = signing.signed_json({**head, **own}, tail, key)
    assert signing.json_again({**shared, **own}, detached) == body
    payload = signing.joined({**shared, **own})
    compact = signing.compact(payload, key)
    assert signing.compact_again(payload, signing.detached_of(compact)) == compact.encode()
    # The JSON answer's signature makes a compact JWS that verifies too.
    again = signing.compact_again(payload, detached).decode()
    protected, encoded, signature = again.split(".")
    assert jose.b64decode(encoded) == payload
    raw = jose.b64decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    private.public_key().verify(der, f"{protected}.{encoded}".encode(), ec.ECDSA(hashes.SHA256()))


# --- platform loans in the score --------------------------------------------------

LOAN_ROW = {"platform": "kechuangtong", "loan_no": "KCT-1", "status": "overdue"}


def loan_history(*steps: tuple[str, str, int | None]) -> list[LedgerEvent]:
    """(event type, UTC day, days overdue) of kechuangtong's KCT-1, oldest first."""
    return [
        LedgerEvent("kechuangtong", "KCT-1", kind, datetime.fromisoformat(f"{day}T02:00:00+00:00"),
                    50_000_000 if kind == "loan_disbursed" else None, days)
        for kind, day, days in steps
    ]  # fmt: skip


# Paid out in spring, 40 days late by the summer's end, in default in the autumn.
GOING_BAD = loan_history(
    ("loan_disbursed", "2026-04-10", None),
    ("repayment_overdue", "2026-09-20", 40),
    ("loan_defaulted", "2026-11-01", None),
)


@pytest.fixture(scope="module")
def with_loan() -> dict[str, Any]:
    builder = ReportBuilder.load(CONFIG)
    return builder.build(ENTERPRISE, RECORDS, FEEDS, NOW, None, [LOAN_ROW], GOING_BAD)


def loan_reasons(score: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in score["reasons"] if r["indicator"].startswith("LOAN-")]


def test_a_loan_in_default_lowers_the_score_citing_the_loan_as_its_section_shows_it(
    report: dict[str, Any], with_loan: dict[str, Any]
) -> None:
    score = with_loan["score"]
    [reason] = loan_reasons(score)
    assert (reason["indicator"], reason["points"]) == ("LOAN-DEFAULT", -150)
    assert (reason["department"], reason["department_name"]) == ("kechuangtong", "科创通")
    [item] = with_loan["sections"]["loans"]["items"]
    assert reason["evidence"] == [f"{item['platform']}:{item['loan_no']}"]
    assert score["value"] == report["score"]["value"] - 150
    assert score["value"] == score["base"] + sum(r["points"] for r in score["reasons"])
    assert score["model_version"] == "xyd-points-2026.3"


def test_the_trend_sees_each_loan_as_it_stood_at_each_quarter_end(
    report: dict[str, Any], with_loan: dict[str, Any]
) -> None:
    clean = {t["quarter"]: t["value"] for t in report["score_trend"]}
    loaded = {t["quarter"]: t["value"] for t in with_loan["score_trend"]}
    # Not yet lent at 2026Q1's end, lent and current at 2026Q2's, 40 days late at 2026Q3's.
    assert loaded["2025Q4"] == clean["2025Q4"]
    assert loaded["2026Q1"] == clean["2026Q1"]
    assert loaded["2026Q2"] == clean["2026Q2"]
    assert loaded["2026Q3"] == clean["2026Q3"] - 40


def test_loan_events_are_not_scored_without_a_connected_ledger(report: dict[str, Any]) -> None:
    builder = ReportBuilder.load(CONFIG)
    unconnected = builder.build(ENTERPRISE, RECORDS, FEEDS, NOW, None, None, GOING_BAD)
    assert unconnected["score"] == report["score"]
    assert unconnected["completeness"]["loans"]["status"] == "unavailable"


def test_a_consent_without_loans_sees_the_loan_reason_but_not_the_loan(
    with_loan: dict[str, Any],
) -> None:
    without = consent_cut(with_loan, frozenset({"basic", "penalties"}))
    [reason] = loan_reasons(without["score"])
    assert reason["evidence"] == []
    assert reason["evidence_withheld"] == 1
    assert reason["points"] == -150  # the sum still holds
    score = without["score"]
    assert score["value"] == score["base"] + sum(r["points"] for r in score["reasons"])
    assert score["value"] == with_loan["score"]["value"]
    [principal] = [
        r for r in score["principal_negative_reasons"] if r["indicator"] == "LOAN-DEFAULT"
    ]
    assert (principal["evidence"], principal["evidence_withheld"]) == ([], 1)
    assert "kechuangtong:KCT-1" not in orjson.dumps(without).decode()

    covered = consent_cut(with_loan, frozenset({"basic", "loans"}))
    [shown] = loan_reasons(covered["score"])
    assert shown["evidence"] == ["kechuangtong:KCT-1"]
    assert "evidence_withheld" not in shown
