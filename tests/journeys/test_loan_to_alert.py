"""Journey 2: 科创通 reports a loan paid out, then 30, 60 and 90 days overdue, then in
default. The bank's report shows the loan and its score counts the default; the
monitor raises the overdue alert and escalates it; 科创通 receives the signed
callback; a risk officer acknowledges and resolves the alert in the dashboard, in a
real browser.

Crosses: the 科创通 push adapter and the loan ledger, the report's `loans` section
and score,
the `xyd monitor` process (relay, Redis stream, rules, alerts), the outbox delivering
to the platform's callback endpoint, the alerts API, the dashboard (Chromium via
Playwright), the audit chain and the access log.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from gateway.client import GatewayClient
from testkit.browser import CHROMIUM, LAUNCH_ARGS
from testkit.builders import TAX, code
from tests.journeys.conftest import OFFICER, OFFICER_PASSWORD, World, deliver, wait_for
from tests.journeys.story import (
    REPORT,
    decisions,
    direct_consent,
    fetched,
    founded,
    tax_rating,
)
from xyd_demo.simulators import kechuangtong as kct

SME = code(1821)
LOAN = "KCTJ2026001821"


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def loan_history(bank_code: str) -> list[dict[str, Any]]:
    """The loan's life on 科创通: paid out 100 days ago, late three times, in default."""
    start = datetime.now(UTC) - timedelta(days=100)
    common = {"credit_code": SME, "application_no": LOAN, "bank_code": bank_code}

    def late(n: int, days: int) -> dict[str, Any]:
        due = start + timedelta(days=1)
        return kct.event(
            "REPAYMENT_OVERDUE", event_id=f"kct-j2-{n}", occurred_at=due + timedelta(days=days),
            repayment={"dueDate": due.date().isoformat(), "amount": "250000.00",
                       "daysOverdue": days}, **common,
        )  # fmt: skip

    return [
        kct.event("LOAN_DISBURSED", event_id="kct-j2-1", occurred_at=start,
                  amount="1000000.00", **common),
        late(2, 30), late(3, 60), late(4, 90),
        kct.event("LOAN_DEFAULTED", event_id="kct-j2-5",
                  occurred_at=start + timedelta(days=92), **common),
    ]  # fmt: skip


def alerts_of(risk: GatewayClient) -> list[dict[str, Any]]:
    answer = risk.request("GET", "/v1/alerts", params={"credit_code": SME})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


@pytest.mark.browser
def test_a_loan_going_bad_reaches_the_report_the_officer_and_the_platform(
    world: World, browser: Browser
) -> None:
    market = world.client("j2-market", "department")
    bank = world.client("j2-bank", "bank", org_code="J2-BOCD")
    assert deliver(market, "registration", founded(SME, "成都蜀光半导体有限公司")) == ["accepted"]
    consent = direct_consent(bank, SME, "post_loan_monitoring", ["basic", "loans"])
    before = fetched(bank, SME, consent["id"])
    assert before["sections"]["loans"]["items"] == []

    with world.kechuangtong() as platform:
        answers = [platform.send(event) for event in loan_history("J2-BOCD")]
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]

    after = fetched(bank, SME, consent["id"])
    [loan] = after["sections"]["loans"]["items"]
    assert (loan["platform"], loan["loan_no"], loan["status"]) == (
        "kechuangtong",
        LOAN,
        "defaulted",
    )
    assert (loan["amount_fen"], loan["days_overdue"]) == (100_000_000, 90)
    assert after["completeness"]["loans"]["status"] == "complete"
    # Before, a registration alone was no credit history; the default now is, and costs.
    assert before["score"]["not_scored"]["code"] == "NS-NO-RECORDS"
    [reason] = [r for r in after["score"]["reasons"] if r["indicator"].startswith("LOAN-")]
    assert (reason["indicator"], reason["department"], reason["points"]) == (
        "LOAN-DEFAULT", "kechuangtong", -150,
    )  # fmt: skip
    assert reason["evidence"] == [f"kechuangtong:{LOAN}"]

    # The monitor raised one overdue alert for the loan and escalated it to critical.
    def escalated() -> list[dict[str, Any]]:
        found = [a for a in alerts_of(world.risk) if a["rule"] == "overdue_default"]
        return found if found and found[0]["severity"] == "critical" else []

    [alert] = wait_for("the overdue alert, escalated", escalated)
    # 科创通 got the alert, signed with the shared secret, from the outbox.
    callback = wait_for(
        "科创通's callback",
        lambda: [b for b in world.callbacks.verified() if b["alertId"] == alert["id"]],
    )
    assert callback[0]["creditCode"] == SME
    assert (callback[0]["applicationNo"], callback[0]["rule"]) == (LOAN, "overdue_default")

    # The officer works it in the dashboard.
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(world.base + "/dashboard?lang=en")
    page.fill("input[name=name]", OFFICER)
    page.fill("input[name=password]", OFFICER_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#user")).to_have_text(OFFICER)
    page.goto(f"{world.base}/dashboard/alerts/{alert['id']}?lang=en")
    expect(page.locator("#alert-status")).to_have_attribute("data-status", "open")
    page.locator("form.work", has=page.locator("#acknowledge")).locator("textarea").fill(
        "已致电借款企业，确认经营困难，启动贷后处置。"
    )
    page.click("#acknowledge")
    expect(page.locator("#alert-status")).to_have_attribute("data-status", "acknowledged")
    page.locator("form.work", has=page.locator("#resolve")).locator("textarea").fill(
        "银行已启动代偿与追偿程序。"
    )
    page.click("#resolve")
    expect(page.locator("#alert-status")).to_have_attribute("data-status", "resolved")
    expect(page.locator("#history")).to_contain_text(f"user:{OFFICER}")

    resolved = world.risk.request("GET", f"/v1/alerts/{alert['id']}").json()
    actions = [h["action"] for h in resolved["history"]]
    assert actions[-2:] == ["acknowledged", "resolved"], actions
    assert len(world.callbacks.verified()) >= 1
    assert all(b["alertId"] == alert["id"] for b in world.callbacks.verified()
               if b["creditCode"] == SME)  # fmt: skip

    assert "audit chain intact" in world.audit_verifies()
    # The officer's work on the enterprise's alert is in its access log too.
    worked = ("user:" + OFFICER, "POST /dashboard/alerts/{alert_id}/{action}", "allow")
    assert decisions(world.access_log(SME)) == [
        ("j2-bank", "POST /v1/consents", "allow"),
        ("j2-bank", REPORT, "allow"),
        ("j2-bank", REPORT, "allow"),
        worked,
        worked,
    ]


def _one_late_loan(world: World, sme: str, n: int) -> tuple[GatewayClient, str]:
    """An enterprise with a consent covering its loans, and one loan 35 days late."""
    market = world.client(f"j2{n}-market", "department")
    bank = world.client(f"j2{n}-bank", "bank", org_code=f"J2{n}-BOCD")
    assert deliver(market, "registration", founded(sme, f"成都样本{n}号有限公司")) == ["accepted"]
    consent = direct_consent(bank, sme, "post_loan_monitoring", ["basic", "loans"])
    paid = datetime.now(UTC) - timedelta(days=40)
    common = {"credit_code": sme, "application_no": f"KCTJ{n}", "bank_code": f"J2{n}-BOCD"}
    with world.kechuangtong() as platform:
        for event in (
            kct.event("LOAN_DISBURSED", event_id=f"kct-j2{n}-1", occurred_at=paid,
                      amount="500000.00", **common),
            kct.event("REPAYMENT_OVERDUE", event_id=f"kct-j2{n}-2",
                      occurred_at=paid + timedelta(days=36),
                      repayment={"dueDate": (paid + timedelta(days=1)).date().isoformat(),
                                 "amount": "100000.00", "daysOverdue": 35}, **common),
        ):  # fmt: skip
            assert platform.send(event).status_code == 200
    return bank, str(consent["id"])


def test_an_overdue_loan_lowers_the_score(world: World) -> None:
    sme = code(1822)
    bank, consent_id = _one_late_loan(world, sme, 22)
    [loan] = fetched(bank, sme, consent_id)["sections"]["loans"]["items"]
    assert loan["status"] == "overdue"
    # Its twin, registered alike on the same day, borrowed nothing; both pay their taxes.
    twin = code(1824)
    assert deliver(world.client("j2t-market", "department"), "registration",
                   founded(twin, "成都样本22号有限公司")) == ["accepted"]  # fmt: skip
    year = datetime.now(UTC).year - 1
    tax = world.client("j2t-tax", "department", department=TAX)
    assert (
        deliver(tax, "tax_rating", tax_rating(sme, "B", year), tax_rating(twin, "B", year))
        == ["accepted"] * 2
    )
    twin_consent = direct_consent(bank, twin, "credit_review", ["basic"])
    late = fetched(bank, sme, consent_id)["score"]
    clean = fetched(bank, twin, twin_consent["id"])["score"]
    assert late["value"] == clean["value"] - 40
    [reason] = [r for r in late["reasons"] if r["indicator"].startswith("LOAN-")]
    assert (reason["indicator"], reason["department"], reason["evidence"]) == (
        "LOAN-OVERDUE-31D", "kechuangtong", ["kechuangtong:KCTJ22"],
    )  # fmt: skip


def test_an_alert_says_status_in_its_body_as_in_its_filter(world: World) -> None:
    sme = code(1823)
    _one_late_loan(world, sme, 23)

    def raised() -> list[dict[str, Any]]:
        answer = world.risk.request("GET", "/v1/alerts", params={"credit_code": sme})
        return list(answer.json()["items"])

    [alert] = wait_for("the overdue alert", raised)
    assert alert["status"] == "open"
    assert "state" not in alert
    listed = world.risk.request("GET", "/v1/alerts", params={"credit_code": sme, "status": "open"})
    assert [a["id"] for a in listed.json()["items"]] == [alert["id"]]
