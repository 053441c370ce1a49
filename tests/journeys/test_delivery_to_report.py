"""Journey 1: a department delivers records, an enterprise signs an authorisation on
科创通 for a bank, and the bank's report shows exactly the sections it covers.

Crosses: the records route (a department's NDJSON batch), the 科创通 push adapter
(HMAC-signed webhook → platform-witnessed consent), the consent feed, the report
(sections cut to the consent, signature checked against the JWKS), the audit chain
and the enterprise's access log.
"""

from __future__ import annotations

from datetime import timedelta

from testkit.builders import TAX, code
from tests.journeys.conftest import World, deliver
from tests.journeys.story import (
    REPORT,
    authorisation,
    decisions,
    fetched,
    fined,
    founded,
    tax_rating,
    today,
)

SME = code(1801)


def test_records_delivered_then_a_platform_signed_authorisation_opens_the_report(
    world: World,
) -> None:
    market = world.client("j1-market", "department")
    assert deliver(market, "registration", founded(SME, "成都星河光电科技有限公司")) == ["accepted"]
    penalty = fined(SME, "P-J1-1", today() - timedelta(days=40))
    assert deliver(market, "penalty", penalty) == ["accepted"]
    assert deliver(market, "penalty", penalty) == ["duplicate"]  # a department's retry
    tax = world.client("j1-tax", "department", department=TAX)
    assert deliver(tax, "tax_rating", tax_rating(SME, "A", today().year - 1)) == ["accepted"]

    # The enterprise signs on 科创通 for the Bank of Chengdu: basic, penalties, tax.
    bank = world.client("j1-bocd", "bank", org_code="J1-BOCD")
    with world.kechuangtong() as platform:
        signed = platform.send(authorisation(SME, "J1-BOCD", 1, ["basic", "penalties", "tax"]))
    assert signed.status_code == 200, signed.text
    assert signed.json() == {"code": 0, "message": "ok"}

    # The bank learns of the consent from its feed, then fetches the report.
    feed = bank.request("GET", f"/v1/consents?credit_code={SME}")
    assert feed.status_code == 200, feed.text
    [consent] = feed.json()["items"]
    assert (consent["status"], consent["grantee"], consent["change"]) == (
        "active", "j1-bocd", "consent.created",
    )  # fmt: skip
    assert consent["evidence"]["channel"] == "kechuangtong"
    report = fetched(bank, SME, consent["id"])

    assert set(report["sections"]) == {"basic", "penalties", "tax"}
    assert {"licenses", "lists", "judicial", "loans"} <= set(report["sections_not_consented"])
    assert report["consent_id"] == consent["id"]
    assert report["sections"]["basic"]["enterprise"]["name"] == "成都星河光电科技有限公司"
    [shown] = report["sections"]["penalties"]["items"]
    assert (shown["source_record_id"], shown["fine_fen"]) == ("P-J1-1", 2_000_000)
    [rating] = report["sections"]["tax"]["items"]
    assert rating["rating"] == "A"
    assert report["completeness"]["penalties"]["status"] == "complete"
    indicators = {r["indicator"] for r in report["score"]["reasons"]}
    assert {"TAX-A", "MKT-PEN"} <= indicators
    assert report["score"]["not_scored"] is None

    # What the enterprise may see of who looked: the platform's consent and one report.
    assert "audit chain intact" in world.audit_verifies()
    log = world.access_log(SME)
    assert decisions(log) == [("j1-bocd", REPORT, "allow")], log
    assert log[-1]["consent_id"] == consent["id"]
    assert log[-1]["purpose"] == consent["purpose"]
