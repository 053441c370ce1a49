"""/portal and /portal/consents: every consent of the person's enterprise, and
revocation after one confirmation, effective on the bank's very next request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from gateway.client import client_assertion
from gateway.consents import service
from gateway.consents.principal import PlatformPrincipal
from gateway.consents.schemas import ConsentIn
from gateway.store.tables import audit_entries, consents, outbox
from gateway.webhooks.repository import set_webhook_url
from policies.consent import ConsentRules
from testkit.builders import code
from tests.identity.test_par import REDIRECT, detail, pkce
from tests.portal.conftest import B_REP, Live, hidden, log_in, query_of

RULES = ConsentRules.load(Path("config/consent.yaml"), ["portal", "platform", "direct"])
REPORT = f"/v1/enterprises/{code(1)}/credit-report"


def platform_consent(live: Live, credit_code: str) -> str:
    until = datetime.now(UTC) + timedelta(days=20)
    body = ConsentIn.model_validate(
        {
            "credit_code": credit_code,
            "grantee": "bank-a",
            "purpose": "loan_application",
            "scopes": ["basic"],
            "valid_until": until,
            "evidence": {
                "document_sha256": "a" * 64,
                "signer": "法定代表人",
                "channel": "kechuangtong",
            },
        }
    )
    with live.engine.begin() as conn:
        made = service.create(conn, PlatformPrincipal("kechuangtong"), body, RULES)
    return str(made["id"])


def approved_token(live: Live, browser: httpx.Client) -> tuple[str, str]:
    """A consent approved on the consent page and the bank's token for it."""
    verifier, challenge = pkce()
    assertion = client_assertion("bank-a", live.bank.key, audience=live.base, kid=live.bank.kid)
    form = live.bank.form(
        assertion, response_type="code", client_id="bank-a", redirect_uri=REDIRECT,
        code_challenge=challenge, code_challenge_method="S256", scope="reports:read",
        authorization_details=orjson.dumps([detail()]).decode(),
    )  # fmt: skip
    form.pop("grant_type")
    request_uri = httpx.post(live.base + "/oauth/par", data=form).json()["request_uri"]
    params = {"client_id": "bank-a", "request_uri": request_uri}
    shown = browser.get("/oauth/authorize", params=params)
    answer = browser.post("/oauth/authorize", data={**hidden(shown.text), "decision": "approve"})
    grant = query_of(answer.headers["location"])["code"]
    assertion = client_assertion("bank-a", live.bank.key, audience=live.base, kid=live.bank.kid)
    token = httpx.post(
        live.base + "/oauth/token",
        data=live.bank.form(
            assertion,
            grant_type="authorization_code",
            code=grant,
            redirect_uri=REDIRECT,
            code_verifier=verifier,
        ),
    )
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    return body["authorization_details"][0]["consent_id"], body["access_token"]


def report(live: Live, token: str) -> httpx.Response:
    return httpx.get(live.base + REPORT, headers={"Authorization": f"Bearer {token}"})


def test_the_landing_page_links_every_portal_page(live: Live) -> None:
    with live.browser() as browser:
        log_in(live, browser)
        home = browser.get("/portal")
        english = browser.get("/portal", params={"lang": "en"})
    for path in ("/portal/consents", "/portal/access-history", "/portal/report",
                 "/portal/disputes", "/portal/repairs"):  # fmt: skip
        assert f'href="{path}"' in home.text
    assert "授权管理" in home.text and "Consents" in english.text
    assert home.headers["x-frame-options"] == "DENY"


def test_every_consent_of_the_enterprise_is_listed_whatever_its_channel(live: Live) -> None:
    with live.browser() as browser:
        log_in(live, browser)
        portal_id, token = approved_token(live, browser)
        assert report(live, token).status_code == 200
        platform_id = platform_consent(live, code(1))
        other_id = platform_consent(live, code(2))
        listed = browser.get("/portal/consents")
    assert listed.status_code == 200
    assert portal_id in listed.text and platform_id in listed.text
    assert other_id not in listed.text  # another enterprise's
    assert "企业在线授权" in listed.text and "融资平台授权" in listed.text
    row = listed.text.split(f'id="{portal_id}"')[1].split("</tr>")[0]
    assert "<td>1</td>" in row  # used once
    assert "有效" in row and "授信审查" in row


def test_revoke_asks_once_then_the_banks_next_call_is_403(live: Live) -> None:
    with live.engine.begin() as conn:
        set_webhook_url(conn, "bank-a", "http://127.0.0.1:9/hook")
    with live.browser() as browser:
        log_in(live, browser)
        consent_id, token = approved_token(live, browser)
        assert report(live, token).status_code == 200
        confirm = browser.get(f"/portal/consents/{consent_id}/revoke")
        assert confirm.status_code == 200 and "确认撤销" in confirm.text
        csrf = hidden(confirm.text)["csrf"]
        refused = browser.post(f"/portal/consents/{consent_id}/revoke", data={"csrf": "nope"})
        assert refused.status_code == 403
        assert report(live, token).status_code == 200  # nothing revoked yet
        done = browser.post(f"/portal/consents/{consent_id}/revoke", data={"csrf": csrf})
        assert done.status_code == 303
        assert done.headers["location"] == "/portal/consents?msg=done"
        assert report(live, token).status_code == 403
        listed = browser.get("/portal/consents")
        assert "已撤销" in listed.text.split(f'id="{consent_id}"')[1].split("</tr>")[0]
        again = browser.post(f"/portal/consents/{consent_id}/revoke", data={"csrf": csrf})
        assert again.status_code == 409
    with live.engine.connect() as conn:
        assert conn.execute(select(consents.c.revoked_at)).scalar() is not None
        kinds = [row.kind for row in conn.execute(select(outbox))]
        entries = conn.execute(
            select(audit_entries).where(audit_entries.c.consent_id == consent_id)
        ).all()
    assert kinds.count("consent.revoked") == 1
    revoked = [e for e in entries if e.route == "POST /portal/consents/{consent_id}/revoke"]
    assert len(revoked) == 1 and revoked[0].client_id == "portal"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_enterprises_person_gets_404(live: Live, method: str) -> None:
    consent_id = platform_consent(live, code(1))
    with live.browser() as browser:
        log_in(live, browser, B_REP)  # a person of code(2)
        csrf = hidden(browser.get("/portal").text)["csrf"]
        path = f"/portal/consents/{consent_id}/revoke"
        answer = browser.get(path) if method == "GET" else browser.post(path, data={"csrf": csrf})
        assert answer.status_code == 404
        assert consent_id not in browser.get("/portal/consents").text
        assert browser.get("/portal/consents/cns_" + "x" * 300 + "/revoke").status_code == 404
    with live.engine.connect() as conn:
        assert conn.execute(select(consents.c.revoked_at)).scalar() is None
