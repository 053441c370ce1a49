"""No secret, token, ID number or phone number in the logs, at DEBUG, over real flows.

Token issuance (private_key_jwt and client_secret_basic), a DPoP-bound call,
a report fetch, record ingestion with personal fields, failed logins, and
hostile requests that put an ID number, a phone number or a token in the
path or the query string. Everything the root logger receives is captured
twice: as the gateway writes it (its JSON formatter) and as raw records
(message, arguments and `extra` fields), so a value the formatter happens
to hide is still a failure.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.client import dpop_proof
from gateway.dashboard import accounts
from gateway.dashboard.router import SESSION_COOKIE
from gateway.identity.clients import set_secret
from gateway.logs import JsonFormatter
from gateway.settings import Settings
from testkit.builders import code, ndjson, penalty, resident_id
from testkit.clients import ISSUER, ClientKey, register
from tests.identity.test_client_secret import basic
from tests.reports.test_reports_api import consent, recent_penalty

REP_ID = resident_id("51010419750202456")
PARTY_ID = resident_id("51010519900303789")
BAD_ID = REP_ID[:-1] + ("0" if REP_ID[-1] != "0" else "1")  # fails its check character
PHONE = "13912345678"
PASSWORD = "violet-otter-harbour-42"
# An 11-digit mainland mobile number standing alone (not inside a longer code, an id
# or a float's decimals, such as a raw record's `created` timestamp).
MOBILE = re.compile(r"(?<![0-9A-Za-z])(?<!\d\.)1[3-9]\d{9}(?![0-9A-Za-z])")


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.handler.setLevel(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def text(self) -> str:
        raw = []
        for record in self.records:
            raw.append(str(record.msg))
            raw.append(repr(record.args))
            raw.append(repr({k: v for k, v in record.__dict__.items() if k not in ("msg", "args")}))
        return self.stream.getvalue() + "\n".join(raw)


@pytest.fixture
def captured(id_settings: Settings) -> Iterator[tuple[TestClient, Captured]]:
    id_settings.log_level = "DEBUG"
    id_settings.allow_client_secret_basic = True
    capture = Captured()
    keeper = logging.Handler(logging.DEBUG)
    keeper.emit = capture.records.append  # type: ignore[method-assign]
    app = create_app(id_settings)  # configures the root logger: add ours after it
    root = logging.getLogger()
    root.addHandler(capture.handler)
    root.addHandler(keeper)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, capture
    finally:
        root.removeHandler(capture.handler)
        root.removeHandler(keeper)


def flows(client: TestClient, engine: Engine, bank: ClientKey) -> dict[str, str]:
    """Run every flow; return the secrets each one handled."""
    secrets: dict[str, str] = {}
    # private_key_jwt
    assertion = bank.assertion()
    answer = client.post("/oauth/token", data=bank.form(assertion))
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    secrets |= {"client assertion": assertion, "access token": token}
    auth = {"Authorization": f"Bearer {token}"}
    # client_secret_basic: a good and a wrong secret
    register(engine, "bank-s")
    with engine.begin() as conn:
        secret = set_secret(conn, "bank-s")
    secrets["client secret"] = secret
    grant = {"grant_type": "client_credentials"}
    ok = client.post("/oauth/token", data=grant, headers=basic("bank-s", secret))
    assert ok.status_code == 200, ok.text
    secrets["second access token"] = ok.json()["access_token"]
    bad = client.post("/oauth/token", data=grant, headers=basic("bank-s", secret + "x"))
    assert bad.status_code == 401
    secrets["wrong client secret"] = secret + "x"
    # a reused assertion is refused (and must not be logged either)
    assert client.post("/oauth/token", data=bank.form(assertion)).status_code in (400, 401)

    # records with personal fields, from a department, including a rejected line
    department = register(engine, "dept-market", client_type="department")
    dept_token = client.post("/oauth/token", data=department.form()).json()["access_token"]
    secrets["department token"] = dept_token
    body = ndjson(
        recent_penalty(legal_rep_name="赵六丰", legal_rep_id_number=REP_ID, 联系电话=PHONE),
        penalty(2, party_category="自然人", credit_code=None, subject_name="王小明",
                party_id_number=PARTY_ID, 联系电话=PHONE),
        penalty(3, legal_rep_id_number=BAD_ID, 联系电话=PHONE),
    )  # fmt: skip
    posted = client.post(
        "/v1/records/penalty",
        content=body,
        headers={"Authorization": f"Bearer {dept_token}", "Content-Type": "application/x-ndjson"},
    )
    assert posted.status_code == 200, posted.text
    assert [r["outcome"] for r in posted.json()["results"]] == ["accepted", "accepted", "rejected"]

    # a report
    granted = consent(client, auth)
    report = client.get(
        f"/v1/enterprises/{code(1)}/credit-report", headers={**auth, "Consent-Id": granted["id"]}
    )
    assert report.status_code == 200, report.text

    # DPoP
    dpop_key = ec.generate_private_key(ec.SECP256R1())
    proof = dpop_proof(dpop_key, "POST", f"{ISSUER}/oauth/token")
    bound = client.post("/oauth/token", data=bank.form(), headers={"DPoP": proof})
    assert bound.status_code == 200, bound.text
    bound_token = bound.json()["access_token"]
    url = f"{ISSUER}/v1/enterprises/{code(1)}"
    call_proof = dpop_proof(dpop_key, "GET", url, bound_token)
    called = client.get(
        f"/v1/enterprises/{code(1)}",
        headers={"Authorization": f"DPoP {bound_token}", "DPoP": call_proof},
    )
    assert called.status_code == 200, called.text
    secrets |= {"DPoP token": bound_token, "DPoP proof": call_proof}

    # dashboard: a failed and a good login
    with engine.begin() as conn:
        accounts.create_user(conn, "wang.fang", "risk_officer", PASSWORD)
    secrets["dashboard password"] = PASSWORD
    for password, status in ((PASSWORD + "!", 401), (PASSWORD, 303)):
        page = client.get("/dashboard/login?lang=en")
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match is not None
        secrets[f"login form token {status}"] = match.group(1)
        answer = client.post(
            "/dashboard/login?lang=en",
            data={"name": "wang.fang", "password": password, "csrf": match.group(1)},
            follow_redirects=False,
        )
        assert answer.status_code == status, answer.text
    secrets["dashboard session"] = client.cookies[SESSION_COOKIE]

    # hostile: personal data and tokens where a client should never put them
    client.get(f"/v1/enterprises/{REP_ID}", headers=auth)
    client.get(f"/v1/enterprises/{PHONE}/credit-report?access_token={token}&phone={PHONE}")
    client.get(f"/v1/loans?id_number={PARTY_ID}", headers={"Authorization": f"Bearer {token}x"})
    return secrets


def test_nothing_secret_or_personal_reaches_the_logs(
    captured: tuple[TestClient, Captured], engine: Engine, bank: ClientKey, id_settings: Settings
) -> None:
    client, capture = captured
    secrets = flows(client, engine, bank)
    secrets["HMAC key for personal data"] = id_settings.pii_key_bytes().decode()
    secrets["key-encryption key"] = id_settings.kek_bytes().hex()
    for path in (id_settings.state_dir / "pii-keys").glob("*.key"):
        secrets[f"personal-data key {path.name}"] = path.read_text().strip()
    secrets |= {"representative's ID": REP_ID, "party's ID": PARTY_ID, "invalid ID": BAD_ID}
    secrets |= {"representative's name": "赵六丰", "party's name": "王小明", "phone": PHONE}

    logged = capture.text()
    assert capture.records, "nothing was captured: the test would prove nothing"
    assert '"logger":"xyd.access"' in capture.stream.getvalue()
    assert len([r for r in capture.records if r.name == "xyd.access"]) >= 15
    leaked = {name for name, value in secrets.items() if value and value in logged}
    assert not leaked, f"in the logs: {sorted(leaked)}"
    assert not MOBILE.findall(logged)
    assert not re.search(r"(?i)bearer |dpop ey|basic [a-z0-9+/=]{8}", logged)
    # uvicorn's own access log (which would print query strings) stays off.
    assert logging.getLogger("uvicorn.access").disabled


def test_secret_settings_never_print(tmp_path: Any) -> None:
    settings = Settings(
        state_dir=tmp_path,
        pii_key="hmac-secret-value",  # type: ignore[arg-type]
        key_encryption_key="ab" * 32,  # type: ignore[arg-type]
        pii_encryption_keys=f"1:{'cd' * 32}",  # type: ignore[arg-type]
    )
    shown = repr(settings) + str(settings.model_dump())
    for value in ("hmac-secret-value", "ab" * 32, "cd" * 32):
        assert value not in shown
