"""Online credit repair in a real browser (Debian's Chromium driven by Playwright),
the issue's acceptance: the enterprise's person logs in at the demo provider,
sees a penalty in their report, applies for its repair with an uploaded PDF and
the commitment accepted; the department's reviewer approves on the dashboard;
then the enterprise's next own report and a bank's next report no longer show
the penalty, and the score changes.

With XYD_SHOTS set, screenshots of the repair pages and the review page are
saved in the directory it names."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect, sync_playwright

from gateway.dashboard import accounts
from gateway.state import state_of
from testkit.browser import BROWSER_MARKS, CHROMIUM, LAUNCH_ARGS, shots_dir
from testkit.builders import MARKET
from tests.portal.conftest import A_REP, Live, log_in
from tests.portal.test_consents_page import approved_token, report
from tests.portal.test_pages import _days_ago, record_id
from tests.repairs.test_evidence import PDF_BYTES
from tests.reports.test_reports_api import ingest, recent_penalty

REVIEWER, REVIEWER_PASSWORD = "li.market", "reviewer password 1"

pytestmark = BROWSER_MARKS


def shoot(page: Page, name: str) -> None:
    where = shots_dir()
    if where is not None:
        page.screenshot(path=str(where / name), full_page=True)


def bank_report(live: Live, token: str) -> dict[str, Any]:
    answer = report(live, token)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def penalty_ids(found: dict[str, Any]) -> set[int]:
    return {item["record_id"] for item in found["sections"]["penalties"]["items"]}


def test_apply_approve_and_the_next_reports(live: Live, tmp_path: Path) -> None:
    ingest(live.engine, "penalty", recent_penalty(1, decision_date=_days_ago(120)))
    penalty = record_id(live.engine, "P-NEW-1")
    with live.engine.begin() as conn:
        accounts.create_user(
            conn, REVIEWER, accounts.REVIEWER, REVIEWER_PASSWORD, department=MARKET
        )
    with live.browser() as approving:  # the bank's consent, approved on the consent page
        assert log_in(live, approving, A_REP).status_code == 303
        _, token = approved_token(live, approving)
    bank_before = bank_report(live, token)
    assert penalty in penalty_ids(bank_before)
    evidence = tmp_path / "缴款凭证.pdf"
    evidence.write_bytes(PDF_BYTES)

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        try:
            person = chromium.new_page(viewport={"width": 1280, "height": 900})
            person.set_default_timeout(15_000)
            person.goto(live.base + "/portal/report")
            expect(person.locator("#username")).to_be_visible()  # at the provider
            person.fill("#username", A_REP)
            person.fill("#password", live.passwords[A_REP])
            person.click("button[type=submit]")
            expect(person).to_have_url(live.base + "/portal/report")
            expect(person.locator(f"#record-{penalty}")).to_be_visible()
            score_before = person.locator("[data-score]").inner_text()

            person.click("nav >> text=信用修复")
            row = person.locator(f"#penalty-{penalty}")
            expect(row).to_contain_text("可以申请信用修复")
            row.locator("a.button").click()
            expect(person.locator("#commitment")).to_contain_text("违背上述承诺")
            person.fill("#statement", "罚款已缴清，违法行为已整改")
            person.set_input_files("#evidence", str(evidence))
            person.check("#accept")
            shoot(person, "portal-repair-apply.png")
            person.click("form[enctype] button[type=submit]")
            expect(person.locator("[data-status]")).to_have_attribute("data-status", "pending")
            expect(person.locator("main")).to_contain_text("缴款凭证.pdf")
            shoot(person, "portal-repair-pending.png")
            application_id = person.url.split("/portal/repairs/")[1].split("?")[0]

            reviewer = chromium.new_page(viewport={"width": 1280, "height": 900})
            reviewer.set_default_timeout(15_000)
            reviewer.goto(live.base + "/dashboard/login")
            reviewer.fill("input[name=name]", REVIEWER)
            reviewer.fill("input[name=password]", REVIEWER_PASSWORD)
            reviewer.click("button[type=submit]")
            reviewer.goto(live.base + f"/dashboard/repairs/{application_id}")
            expect(reviewer.locator("pre.commitment")).to_contain_text("违背上述承诺")
            expect(reviewer.locator("table.evidence")).to_contain_text("缴款凭证.pdf")
            shoot(reviewer, "dashboard-repair-review.png")
            reviewer.click("button[value=approve]")
            expect(reviewer.locator("main")).to_contain_text("已同意")

            person.goto(live.base + f"/portal/repairs/{application_id}")
            expect(person.locator("[data-status]")).to_have_attribute("data-status", "approved")
            shoot(person, "portal-repair-approved.png")
            person.goto(live.base + "/portal/report")
            expect(person.locator(f"#record-{penalty}")).to_have_count(0)
            score_after = person.locator("[data-score]").inner_text()
        finally:
            chromium.close()

    # The bank's next report: its process may decide from its copy of the data
    # version for consent_copy_s (a data change shows within that).
    time.sleep(state_of(live.app).reports.copy_s)  # type: ignore[arg-type]
    bank_after = bank_report(live, token)
    assert penalty not in penalty_ids(bank_after)
    assert bank_after["data_version"] > bank_before["data_version"]
    assert (bank_after["score"], bank_after["score_trend"]) != (
        bank_before["score"], bank_before["score_trend"],
    )  # fmt: skip
    assert score_after != score_before
    assert httpx.get(live.base + "/healthz").status_code == 200
