"""The enterprise login against the live demo provider: the session it makes,
and each way a login can be forged, replayed or turned into a redirect."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.consents.principal import PortalPrincipal
from gateway.keys import jose
from gateway.outbound import OutboundPolicy
from gateway.portal import sessions
from gateway.portal.web import LOGIN_COOKIE, SESSION_COOKIE
from gateway.settings import Settings
from gateway.state import state_of
from gateway.store.tables import portal_logins, portal_sessions
from testkit.builders import code
from testkit.clients import new_key
from tests.portal.conftest import A_REP, Live, at_provider, log_in, query_of, to_provider


def login_token(browser: httpx.Client) -> str:
    return browser.cookies.get(LOGIN_COOKIE, path="/portal/login") or ""


def session_rows(live: Live) -> list[Any]:
    with live.engine.connect() as conn:
        return list(conn.execute(select(portal_sessions)))


def test_login_makes_a_fresh_server_side_session(live: Live) -> None:
    with live.browser() as browser:
        browser.cookies.set(SESSION_COOKIE, "planted-by-someone", domain="127.0.0.1")
        answer = log_in(live, browser, next_path="/portal/consents")
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/portal/consents"
        cookie = next(h for h in answer.headers.get_list("set-cookie") if SESSION_COOKIE in h)
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # the gateway is on http here
        token = browser.cookies.get(SESSION_COOKIE, path="/")
        assert token and token != "planted-by-someone"
        home = browser.get("/portal")
        assert home.status_code == 200
        assert code(1) in home.text and "法定代表人" in home.text
        assert "<script" not in home.text
    [row] = session_rows(live)
    assert row.id == sessions.token_hash(token)  # the token itself is not stored
    subject = PortalPrincipal.of(state_of(live.app).pii_key, "x", code(1), "agent")
    assert len(row.subject_hash) == len(subject.subject_hash)
    assert (row.credit_code, row.role) == (code(1), "legal_representative")


def test_logout_needs_the_csrf_token(live: Live) -> None:
    with live.browser() as browser:
        log_in(live, browser)
        refused = browser.post("/portal/logout", data={"csrf": "wrong"})
        assert refused.status_code == 403
        assert browser.get("/portal").status_code == 200
        csrf = sessions.derived(browser.cookies.get(SESSION_COOKIE, path="/") or "", "csrf")
        assert browser.post("/portal/logout", data={"csrf": csrf}).status_code == 200
        assert browser.get("/portal").status_code == 303
    assert session_rows(live) == []


def test_a_state_that_does_not_match_is_refused(live: Live) -> None:
    with live.browser() as browser:
        back = at_provider(live, browser, to_provider(live, browser), A_REP)
        query = query_of(back)
        forged = browser.get("/portal/login/callback", params={**query, "state": "not-the-state"})
        assert forged.status_code == 400
        assert f"{SESSION_COOKIE}=" not in forged.headers.get("set-cookie", "")
    assert session_rows(live) == []


def test_a_state_is_single_use(live: Live) -> None:
    with live.browser() as browser:
        back = at_provider(live, browser, to_provider(live, browser), A_REP)
        login_cookie = browser.cookies.get(LOGIN_COOKIE, path="/portal/login")
        assert browser.get(back).status_code == 303
        browser.cookies.set(
            LOGIN_COOKIE, login_cookie or "", domain="127.0.0.1", path="/portal/login"
        )
        again = browser.get(back)
        assert again.status_code == 400
        assert "already used" in again.text  # the cause, for a helpdesk
        assert "登录未成功，请重新登录" in again.text  # first, in the person's words
    assert len(session_rows(live)) == 1


def test_a_callback_in_another_browser_is_refused(live: Live) -> None:
    """Login CSRF: an attacker's own callback URL, opened in the victim's browser."""
    with live.browser() as attacker:
        back = at_provider(live, attacker, to_provider(live, attacker), A_REP)
    with live.browser() as victim:
        answer = victim.get(back)
        assert answer.status_code == 400
        assert "another browser" in answer.text
    assert session_rows(live) == []


def test_an_answer_from_another_issuer_is_refused(live: Live) -> None:
    with live.browser() as browser:
        back = at_provider(live, browser, to_provider(live, browser), A_REP)
        query = {**query_of(back), "iss": "https://evil.example"}
        answer = browser.get("/portal/login/callback", params=query)
        assert answer.status_code == 403
    assert session_rows(live) == []


def test_the_pending_login_is_kept_by_hashes_only(live: Live) -> None:
    with live.browser() as browser:
        url = to_provider(live, browser)
        params = query_of(url)
        browser_token = login_token(browser)
    with live.engine.connect() as conn:
        [row] = list(conn.execute(select(portal_logins)))
    stored = repr(tuple(row))
    for secret in (params["state"], params["nonce"], browser_token):
        assert secret not in stored
    assert params["code_challenge_method"] == "S256"
    verifier = sessions.verifier_of(browser_token, params["state"])
    assert jose.b64encode(hashlib.sha256(verifier.encode()).digest()) == params["code_challenge"]


# --- ID tokens the provider did not give, served as the token endpoint's answer ---


def _claims(live: Live, nonce: str, **changes: Any) -> dict[str, Any]:
    reg = state_of(live.app).relying_party.registration()
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": live.issuer, "sub": "someone", "aud": reg.client_id, "iat": now,
        "exp": now + 300, "nonce": nonce, "credit_code": code(1),
        "xyd_role": "legal_representative",
    }  # fmt: skip
    claims.update(changes)
    return claims


def _kid(live: Live) -> str:
    jwks = httpx.get(live.issuer + "/jwks").json()
    return str(jwks["keys"][0]["kid"])


def _signed(live: Live, claims: dict[str, Any], *, bad_signature: bool = False) -> str:
    key = new_key() if bad_signature else live.provider_key()
    return jose.sign({"alg": "ES256", "typ": "JWT", "kid": _kid(live)}, claims, key)


TAMPERED: dict[str, tuple[dict[str, Any], bool]] = {
    "bad signature": ({}, True),
    "wrong aud": ({"aud": "another-client"}, False),
    "wrong nonce": ({"nonce": "not-this-login"}, False),
    "expired": ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3900}, False),
    "wrong iss": ({"iss": "https://evil.example"}, False),
    "no enterprise": ({"credit_code": "not-a-code"}, False),
    "wrong role": ({"xyd_role": "cleaner"}, False),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_an_id_token_that_is_not_right_is_refused(live: Live, case: str) -> None:
    changes, bad_signature = TAMPERED[case]
    party = state_of(live.app).relying_party
    with live.browser() as browser:
        back = at_provider(live, browser, to_provider(live, browser), A_REP)
        state = query_of(back)["state"]
        nonce = sessions.nonce_of(
            browser.cookies.get(LOGIN_COOKIE, path="/portal/login") or "", state
        )
        token = _signed(live, {**_claims(live, nonce), **changes}, bad_signature=bad_signature)

        async def tampered(*args: Any, **kwargs: Any) -> str:
            return token

        party.exchange = tampered  # type: ignore[method-assign]
        answer = browser.get(back)
    assert answer.status_code == 403, answer.text
    assert "<script" not in answer.text
    assert session_rows(live) == []


def test_the_untampered_token_is_accepted_through_the_same_seam(live: Live) -> None:
    """The crafted tokens above fail for what was changed, not for being crafted."""
    party = state_of(live.app).relying_party
    with live.browser() as browser:
        back = at_provider(live, browser, to_provider(live, browser), A_REP)
        state = query_of(back)["state"]
        nonce = sessions.nonce_of(
            browser.cookies.get(LOGIN_COOKIE, path="/portal/login") or "", state
        )
        token = _signed(live, _claims(live, nonce))

        async def tampered(*args: Any, **kwargs: Any) -> str:
            return token

        party.exchange = tampered  # type: ignore[method-assign]
        assert browser.get(back).status_code == 303
    assert len(session_rows(live)) == 1


# --- open redirects ---------------------------------------------------------------

HOSTILE_NEXT = [
    "https://evil.example/",
    "//evil.example/portal",
    "/\\evil.example",
    "/\t/evil.example",
    "http:/evil.example",
    "/dashboard",
    "/portal/%2F%2Fevil.example",
    "/portal/../v1/enterprises",
    " /portal",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_next_never_leaves_the_portal(live: Live, target: str) -> None:
    with live.browser() as browser:
        answer = log_in(live, browser, next_path=target)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/portal"
        # Logged in already: the login sends straight to `next`, checked the same way.
        again = browser.get("/portal/login", params={"next": target})
        assert again.status_code == 303
        assert again.headers["location"] == "/portal"


def test_a_page_without_a_session_sends_to_the_login_and_back(live: Live) -> None:
    with live.browser() as browser:
        answer = browser.get("/portal/consents")
        assert answer.status_code == 303
        assert query_of(answer.headers["location"]) == {"next": "/portal/consents"}
        assert answer.headers["location"].startswith("/portal/login?")


def test_a_provider_outside_the_outbound_allow_list_is_never_called(live: Live) -> None:
    state_of(live.app).relying_party.policy = OutboundPolicy.of([])
    state_of(live.app).relying_party._metadata.clear()
    with live.browser() as browser:
        answer = browser.get("/portal/login")
    assert answer.status_code == 503
    assert "location" not in answer.headers


def test_no_registration_is_a_503_page(live: Live, tmp_path: Path) -> None:
    state_of(live.app).settings.enterprise_oidc_client_file = tmp_path / "absent.json"
    with live.browser() as browser:
        answer = browser.get("/portal/login")
    assert answer.status_code == 503
    assert "not configured" in answer.text


def test_hostile_callback_parameters_are_4xx_pages(live: Live) -> None:
    with live.browser() as browser:
        for params in (
            httpx.QueryParams({"state": "s" * 201, "code": "c"}),
            httpx.QueryParams({"state": "a", "code": "c" * 513}),
            httpx.QueryParams([("state", "a"), ("state", "b")]),
            httpx.QueryParams(),
        ):
            answer = browser.get("/portal/login/callback", params=params)
            assert answer.status_code == 400, answer.text
            assert answer.headers["content-type"].startswith("text/html")
        twice = browser.get("/portal/login", params=[("next", "/portal"), ("next", "//evil")])
        assert twice.status_code == 400


def test_logins_started_from_one_address_are_throttled(id_settings: Settings, live: Live) -> None:
    # A pending login is a row: one address may not start them without end.
    burst = id_settings.login_source_burst
    with httpx.Client(base_url=live.base) as browser:
        answers = [browser.get("/portal/login").status_code for _ in range(burst)]
        refused = browser.get("/portal/login")
    assert answers[:burst] == [302] * burst
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "登录尝试过于频繁" in refused.text
    assert "text/html" in refused.headers["content-type"]
