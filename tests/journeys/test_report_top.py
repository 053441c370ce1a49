"""Journey 6: a new enterprise, one that deregisters, and one put on the black list:
each report says the right thing at its top, before any section is read.

Crosses: the records route (registration, an update that deregisters, the black
list), consents, the report's score (not scored, with its code), the audit
chain and the access log.
"""

from __future__ import annotations

from datetime import timedelta

from testkit.builders import AUTHORITY_CODE, CREDIT_OFFICE, code
from tests.journeys.conftest import World, deliver
from tests.journeys.story import REPORT, decisions, direct_consent, fetched, founded, today

NEW, CLOSING, LISTED = code(1861), code(1862), code(1863)
UNKNOWN = code(1869)
SECTIONS = ["basic", "penalties", "lists"]
CONSENTS = "POST /v1/consents"


def black_listed(credit_code: str) -> dict[str, object]:
    return {
        "record_id": f"B-{credit_code}", "source_department": "成都市发展和改革委员会",
        "credit_code": credit_code, "list_name": "严重失信主体名单",
        "listing_authority": "成都市发展和改革委员会", "reason": "拒不履行法定义务",
        "listed_on": (today() - timedelta(days=10)).isoformat(),
        "authority_code": AUTHORITY_CODE,
    }  # fmt: skip


def test_new_deregistered_and_black_listed_enterprises_say_so_at_the_top(world: World) -> None:
    market = world.client("j6-market", "department")
    credit = world.client("j6-credit-office", "department", department=CREDIT_OFFICE)
    bank = world.client("j6-bank", "bank", org_code="J6-ABC")
    young = today() - timedelta(days=30)
    assert deliver(
        market, "registration",
        founded(NEW, "成都初芽科技有限公司", registered_on=young.isoformat()),
        founded(CLOSING, "成都旧城贸易有限公司", registered_on="2012-05-02"),
        founded(LISTED, "成都失信建材有限公司", registered_on="2015-09-09"),
    ) == ["accepted"] * 3  # fmt: skip

    # New: registered a month ago, nothing else known yet: not scored, and why.
    consent = direct_consent(bank, NEW, "loan_application", SECTIONS)
    score = fetched(bank, NEW, consent["id"])["score"]
    assert (score["value"], score["grade"]) == (None, None)
    assert score["not_scored"]["code"] == "NS-INSUFFICIENT"

    # Deregistered: scored while it traded; the market regulator's update ends that.
    closing = direct_consent(bank, CLOSING, "post_loan_monitoring", SECTIONS)
    assert fetched(bank, CLOSING, closing["id"])["score"]["not_scored"]["code"] == "NS-NO-RECORDS"
    assert deliver(market, "penalty", {
        "record_id": f"P-{CLOSING}", "source_department": "成都市市场监督管理局",
        "credit_code": CLOSING, "decision_number": "成市监罚〔2026〕186号",
        "violation_type": "虚假宣传", "penalty_types": ["罚款"], "fine_wan": "1",
        "severity": "general", "decision_date": (today() - timedelta(days=60)).isoformat(),
        "authority": "成都市市场监督管理局", "authority_code": AUTHORITY_CODE,
    }) == ["accepted"]  # fmt: skip
    scored = fetched(bank, CLOSING, closing["id"])
    assert scored["score"]["value"] is not None and scored["score"]["not_scored"] is None
    closed = founded(CLOSING, "成都旧城贸易有限公司", registered_on="2012-05-02", status="注销")
    assert deliver(market, "registration", closed) == ["updated"]
    after = fetched(bank, CLOSING, closed_id := closing["id"])
    assert after["sections"]["basic"]["enterprise"]["status"] == "deregistered"
    assert (after["score"]["value"], after["score"]["grade"]) == (None, None)
    assert after["score"]["not_scored"]["code"] == "NS-DEREGISTERED"
    assert after["sections"]["penalties"]["items"], "its history stays on the report"

    # Black-listed: the list entry is on the report and costs the most points.
    listed = direct_consent(bank, LISTED, "credit_review", SECTIONS)
    assert deliver(credit, "black_list", black_listed(LISTED)) == ["accepted"]
    top = fetched(bank, LISTED, listed["id"])
    [entry] = top["sections"]["lists"]["items"]
    assert entry["list_name"] == "严重失信主体名单"
    principal = top["score"]["principal_negative_reasons"]
    assert principal[0]["indicator"] == "PUB-BLACK", principal
    assert top["score"]["risk_class"] == "较高"  # 700 + 15 (age) − 150 = 565

    assert "audit chain intact" in world.audit_verifies()
    for sme, consent_id, reads in ((NEW, consent["id"], 1), (CLOSING, closed_id, 3),
                                   (LISTED, listed["id"], 1)):  # fmt: skip
        log = world.access_log(sme)
        assert decisions(log) == [
            ("j6-bank", CONSENTS, "allow"),
            *[("j6-bank", REPORT, "allow")] * reads,
        ], log
        reads_and_consents = [e for e in log if not (e["reason"] or "").startswith("record ")]
        assert {e["consent_id"] for e in reads_and_consents} == {consent_id}


def test_no_consent_is_taken_for_an_unknown_or_deregistered_enterprise(world: World) -> None:
    market = world.client("j6b-market", "department")
    bank = world.client("j6b-bank", "bank", org_code="J6B-ABC")
    gone = code(1864)
    closed = founded(gone, "成都已散餐饮有限公司", registered_on="2010-01-01", status="注销")
    assert deliver(market, "registration", closed) == ["accepted"]
    body = {
        "grantee": "j6b-bank", "purpose": "loan_application", "scopes": SECTIONS,
        "valid_until": (today() + timedelta(days=20)).isoformat() + "T00:00:00+08:00",
        "evidence": {"document_sha256": "cd" * 32, "signer": "法定代表人", "channel": "direct"},
    }  # fmt: skip
    unknown = bank.request("POST", "/v1/consents", json={**body, "credit_code": UNKNOWN})
    assert unknown.status_code in (404, 422), unknown.text
    assert unknown.headers["content-type"] == "application/problem+json"
    deregistered = bank.request("POST", "/v1/consents", json={**body, "credit_code": gone})
    assert deregistered.status_code == 422, deregistered.text
    assert deregistered.headers["content-type"] == "application/problem+json"
