"""GET/POST /oauth/authorize: the consent page the enterprise's person reads and
their decision, over real HTTP, after a real login at the demo provider."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from gateway.portal import views
from gateway.store.tables import consents, oauth_requests
from testkit.builders import code
from tests.identity.test_par import REDIRECT
from tests.portal.conftest import B_REP, Live, hidden, log_in, query_of

AUTHORIZE = "/oauth/authorize"


def page(browser: httpx.Client, request_uri: str, **extra: str) -> httpx.Response:
    return browser.get(
        AUTHORIZE, params={"client_id": "bank-a", "request_uri": request_uri, **extra}
    )


def decide(browser: httpx.Client, form: dict[str, str], decision: str) -> httpx.Response:
    return browser.post(AUTHORIZE, data={**form, "decision": decision})


def spent(live: Live) -> bool:
    with live.engine.connect() as conn:
        return conn.execute(select(oauth_requests.c.used_at)).scalar() is not None


def test_not_logged_in_the_page_logs_in_first_and_comes_back(live: Live) -> None:
    request_uri = live.push()
    with live.browser() as browser:
        first = page(browser, request_uri)
        assert first.status_code == 303
        next_path = query_of(first.headers["location"])["next"]
        assert next_path.startswith(AUTHORIZE + "?")
        answer = log_in(live, browser, next_path=next_path)
        assert answer.status_code == 303 and answer.headers["location"] == next_path
        shown = browser.get(next_path)
        assert shown.status_code == 200
        assert 'name="decision" value="approve"' in shown.text


def test_the_page_shows_the_terms_and_cannot_be_framed(live: Live) -> None:
    request_uri = live.push(purpose="post_loan_monitoring", max_daily_accesses=2)
    with live.browser() as browser:
        log_in(live, browser)
        zh = page(browser, request_uri)
        en = page(browser, request_uri, lang="en")
    assert zh.status_code == en.status_code == 200
    for answer in (zh, en):
        assert answer.headers["x-frame-options"] == "DENY"
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp
        assert "form-action 'self' https://bank-a.example" in csp  # the decision's redirect
        assert "<script" not in answer.text
        assert '<button type="submit" name="decision" value="approve"' in answer.text
        assert '<button type="submit" name="decision" value="decline"' in answer.text
        assert code(1) in answer.text and "bank-a" in answer.text
    assert "贷后管理" in zh.text and "基本信息" in zh.text and "行政处罚" in zh.text
    assert "Post-loan monitoring" in en.text and "Penalties" in en.text
    assert "<dd>2</dd>" in zh.text  # the daily limit
    assert 'lang="zh-CN"' in zh.text and 'lang="en"' in en.text


def test_approve_redirects_to_the_bank_with_code_state_and_iss(live: Live) -> None:
    request_uri = live.push()
    with live.browser() as browser:
        log_in(live, browser)
        shown = page(browser, request_uri)
        answer = decide(browser, hidden(shown.text), "approve")
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == "bank-state" and query["iss"] == live.base and query["code"]
    with live.engine.connect() as conn:
        row = conn.execute(select(consents)).one()
    assert row.channel == "portal" and row.credit_code == code(1)
    block = re.search(r'<dl class="terms">.*?</ul></dd></dl>', shown.text)
    assert block is not None
    assert row.evidence["page_sha256"] == views.shown_sha256(block.group(0))
    assert row.evidence["page_sha256"] == hashlib.sha256(block.group(0).encode()).hexdigest()


def test_decline_redirects_with_access_denied(live: Live) -> None:
    request_uri = live.push()
    with live.browser() as browser:
        log_in(live, browser)
        answer = decide(browser, hidden(page(browser, request_uri).text), "decline")
    assert answer.status_code == 302
    assert query_of(answer.headers["location"])["error"] == "access_denied"
    assert urlsplit(answer.headers["location"]).netloc == "bank-a.example"


def test_an_approve_without_or_with_a_wrong_csrf_token_is_403(live: Live) -> None:
    request_uri = live.push()
    with live.browser() as browser:
        log_in(live, browser)
        form = hidden(page(browser, request_uri).text)
        without = {k: v for k, v in form.items() if k != "csrf"}
        assert decide(browser, without, "approve").status_code == 403
        assert decide(browser, {**form, "csrf": "x" * 43}, "approve").status_code == 403
        assert not spent(live)
        assert decide(browser, form, "approve").status_code == 302  # still there to approve


def test_an_approve_from_another_browser_session_is_403(live: Live) -> None:
    """The CSRF token is the session's: a form lifted from one session fails in another."""
    request_uri = live.push()
    with live.browser() as mine:
        log_in(live, mine)
        form = hidden(page(mine, request_uri).text)
    with live.browser() as other:
        log_in(live, other)
        assert decide(other, form, "approve").status_code == 403
    assert not spent(live)


def test_a_person_of_enterprise_b_cannot_approve_for_enterprise_a(live: Live) -> None:
    request_uri = live.push()  # for code(1)
    with live.browser() as browser:
        log_in(live, browser, B_REP)  # a person of code(2)
        shown = page(browser, request_uri)
        assert shown.status_code == 403
        assert 'value="approve"' not in shown.text and code(1) not in shown.text
        csrf = hidden(browser.get("/portal").text)["csrf"]
        form = {"csrf": csrf, "client_id": "bank-a", "request_uri": request_uri}
        answer = decide(browser, form, "approve")
        assert answer.status_code == 403
        assert "location" not in answer.headers
        assert decide(browser, form, "decline").status_code == 403
    assert not spent(live)
    with live.engine.connect() as conn:
        assert conn.execute(select(consents)).first() is None


def test_unknown_used_or_malformed_request_uris_are_pages_not_redirects(live: Live) -> None:
    request_uri = live.push()
    with live.browser() as browser:
        log_in(live, browser)
        form = hidden(page(browser, request_uri).text)
        assert decide(browser, form, "approve").status_code == 302
        for answer in (
            page(browser, request_uri),  # used
            decide(browser, form, "approve"),  # used, again
            page(browser, "urn:ietf:params:oauth:request_uri:made-up"),
            page(browser, "https://evil.example/"),
            browser.get(AUTHORIZE, params={"client_id": "bank-a"}),
            page(browser, "u" * 201),
        ):
            assert 400 <= answer.status_code < 500, answer.text
            assert "location" not in answer.headers
            assert answer.headers["x-frame-options"] == "DENY"
        assert decide(browser, {**form, "decision": "maybe"}, "maybe").status_code == 400
        oversized = browser.post(AUTHORIZE, data={"csrf": "x" * 5000})
        assert oversized.status_code == 413


def test_a_refusal_tells_the_person_what_happened_in_their_language(live: Live) -> None:
    """Not `request_uri already used` on a Chinese page: what happened, what to do,
    and a new login offered only where one can help."""
    request_uri = live.push()
    with live.browser() as browser:
        log_in(live, browser)
        form = hidden(page(browser, request_uri).text)
        assert decide(browser, form, "approve").status_code == 302
        again, again_en = page(browser, request_uri), page(browser, request_uri, lang="en")
        stale = decide(browser, {**form, "csrf": "x" * 43}, "approve")
        incomplete = browser.get(AUTHORIZE)
    with live.browser() as other:
        log_in(live, other, B_REP)
        elsewhere = page(other, live.push())
    with live.browser() as logged_out:
        ended = decide(logged_out, form, "approve")
    expected = (
        (again, 400, "已被同意或拒绝", False),
        (again_en, 400, "start again from the bank&#x27;s site", False),
        (stale, 403, "页面已失效", True),
        (incomplete, 400, "授权链接不完整", False),
        (elsewhere, 403, "另一家企业", True),
        (ended, 403, "登录已过期", True),
    )
    for answer, status, says, login in expected:
        assert answer.status_code == status
        assert says in answer.text
        assert ('href="/portal/login' in answer.text) is login
        assert "request_uri" not in answer.text and "CSRF" not in answer.text
        assert "location" not in answer.headers
    assert code(1) not in elsewhere.text
