"""The consent journey in a real browser (Debian's Chromium driven by Playwright),
everything over HTTP on loopback: the gateway, the demo identity provider, and
a bank's webhook receiver.

A bank (the reference client) pushes a request; the enterprise's person opens the
authorize URL, logs in at the provider, reads the consent page and approves; the
browser is sent to the bank's redirect URI (watched: bank-a.example is not
served) with code, state and iss; the bank redeems the code and fetches a signed
report with its DPoP-bound token. The person then revokes on the portal's
consents page, after its confirmation: the bank's next call is 403 and its
webhook receiver gets a `consent.revoked` the reference client's verifier
accepts. A declined request reaches the bank's callback as access_denied.

With XYD_SHOTS set, screenshots of the consent page and the consents page are
saved in the directory it names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import update

from gateway.client import (
    AuthorizationDenied,
    CreditReportAsk,
    GatewayClient,
    Pushed,
    verify_webhook,
)
from gateway.keys import jose
from gateway.settings import Settings
from gateway.store.tables import clients
from gateway.webhooks.repository import set_webhook_url
from policies.consent import Purpose
from testkit.browser import BROWSER_MARKS, CHROMIUM, LAUNCH_ARGS, shots_dir
from testkit.builders import code
from testkit.live import serve
from tests.identity.test_par import REDIRECT
from tests.portal.conftest import A_REP, Live
from tests.webhooks.test_webhooks import Receiver

BANK_NAME = "成都示范银行"
SECTIONS = ("basic", "penalties", "tax", "judicial", "loans")
SECTION_WORDS = ("基本信息", "行政处罚", "纳税信用", "司法信息", "融资信息")
REPORT = f"/v1/enterprises/{code(1)}/credit-report"

pytestmark = BROWSER_MARKS


@pytest.fixture
def quick(id_settings: Settings) -> Settings:
    """The outbox read often, so the webhook arrives within the test's wait."""
    id_settings.outbox_poll_s = 0.2
    return id_settings


@pytest.fixture
def receiver(quick: Settings, live: Live) -> Iterator[Receiver]:
    """The bank's webhook endpoint, registered for bank-a, under a bank's name."""
    hooks = Receiver()
    with serve(hooks.app) as base:
        with live.engine.begin() as conn:
            set_webhook_url(conn, "bank-a", f"{base}/hook")
            named = update(clients).where(clients.c.client_id == "bank-a")
            conn.execute(named.values(display_name=BANK_NAME))
        yield hooks


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def bank_of(live: Live) -> GatewayClient:
    return GatewayClient(live.base, "bank-a", live.bank.key, kid=live.bank.kid)


def ask(
    purpose: Purpose = "post_loan_monitoring",
    valid_until: datetime | None = None,
    max_daily_accesses: int | None = 3,
) -> CreditReportAsk:
    until = valid_until or datetime.now(UTC) + timedelta(days=60)
    return CreditReportAsk(code(1), purpose, SECTIONS, until, max_daily_accesses)


def to_consent_page(page: Page, live: Live, pushed: Pushed) -> None:
    """The person opens the authorize URL and logs in at the provider."""
    page.goto(pushed.authorize_url)
    expect(page).to_have_url(re.compile(re.escape(live.issuer + "/authorize?")))
    page.fill("[autocomplete=username]", A_REP)
    page.fill("[autocomplete=current-password]", live.passwords[A_REP])
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(re.escape(live.base + "/oauth/authorize?")))


def decide(page: Page, decision: str) -> str:
    """The person's decision: the bank's redirect URI the browser is sent to.
    Playwright cannot route a redirect's target, and bank-a.example is not
    served, so the browser's request to it is watched, not answered."""
    with page.expect_request(lambda request: request.url.startswith(REDIRECT + "?")) as sent:
        page.click(f"button[value={decision}]")
    return sent.value.url


def test_approve_report_revoke_and_the_bank_is_told(
    live: Live, receiver: Receiver, browser: Browser
) -> None:
    bank = bank_of(live)
    until = datetime.now(UTC) + timedelta(days=60)
    pushed = bank.push(ask(valid_until=until), REDIRECT)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    to_consent_page(page, live, pushed)

    terms = page.locator("dl.terms")
    expect(page.locator("h1")).to_be_visible()
    expect(terms).to_contain_text(BANK_NAME)
    expect(terms).to_contain_text(code(1))
    expect(terms).to_contain_text("贷后管理")
    for word in SECTION_WORDS:
        expect(terms.locator("li", has_text=word)).to_have_count(1)
    assert terms.locator("li").count() == len(SECTIONS)
    beijing = until.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    expect(terms).to_contain_text(beijing)
    limit = terms.locator("dt", has_text="每日").locator("xpath=following-sibling::dd[1]")
    expect(limit).to_have_text("3")
    if shots := shots_dir():
        page.screenshot(path=str(shots / "consent-page.png"), full_page=True)

    callback = decide(page, "approve")
    grant = bank.redeem(bank.callback(callback, pushed), pushed)  # code, state and iss checked
    answer = bank.request("GET", REPORT, grant=grant, headers={"Accept": "application/jose"})
    assert answer.status_code == 200, answer.text
    jwks = bank.http.get("/.well-known/jwks.json").json()
    signed = jose.parse(answer.text)
    key = {k["kid"]: k for k in jwks["keys"]}[signed.header["kid"]]
    jose.verify(signed, jose.public_key_from_jwk(key), frozenset({"ES256"}))
    assert signed.claims["credit_code"] == code(1)

    # The portal in another tab: this one's failed navigation to bank-a.example
    # would interrupt a visit started here.
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(live.base + "/portal/consents")
    row = page.locator(f"tr[id='{grant.consent_id}']")
    expect(row).to_contain_text(BANK_NAME)
    expect(row).to_contain_text("有效")
    expect(row.locator("td").nth(6)).to_have_text("1")  # used once
    if shots:
        page.screenshot(path=str(shots / "portal-consents.png"), full_page=True)
    row.locator("a.button").click()
    expect(page.locator("h1")).to_contain_text("撤销")
    assert bank.request("GET", REPORT, grant=grant).status_code == 200  # not yet
    page.click("button.danger")
    expect(page).to_have_url(live.base + "/portal/consents?msg=done")
    expect(page.locator(f"tr[id='{grant.consent_id}']")).to_contain_text("已撤销")
    if shots:
        page.screenshot(path=str(shots / "portal-consents-revoked.png"), full_page=True)

    refused = bank.request("GET", REPORT, grant=grant)
    assert refused.status_code == 403, refused.text
    receiver.wait_for(1)
    event = verify_webhook(receiver.bodies[0], jwks)
    assert receiver.types[0] == "application/jose"
    assert event["type"] == "consent.revoked"
    assert event["consent_id"] == grant.consent_id and event["credit_code"] == code(1)


def test_declined_in_the_browser_the_banks_callback_raises_access_denied(
    live: Live, browser: Browser
) -> None:
    bank = bank_of(live)
    pushed = bank.push(ask(purpose="credit_review", max_daily_accesses=None), REDIRECT)
    page = browser.new_context().new_page()
    page.set_default_timeout(15_000)
    to_consent_page(page, live, pushed)
    callback = decide(page, "decline")
    with pytest.raises(AuthorizationDenied) as denied:
        bank.callback(callback, pushed)
    assert denied.value.error == "access_denied"
    # Opened again in another tab (for the reason above): a page saying what happened.
    tab = page.context.new_page()
    again = tab.goto(pushed.authorize_url)
    assert again is not None and again.status == 400
    expect(tab.get_by_role("alert")).to_contain_text("已被同意或拒绝")
