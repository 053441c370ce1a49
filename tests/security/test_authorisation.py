"""OWASP API1 (object level) and API5 (function level): who may touch what.

Tenants see 404 for another tenant's objects (nothing about their existence
leaks); a client type calling a function that is not its own gets 403.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from gateway.alerts.service import apply_finding
from gateway.store.tables import alerts, consents, loan_events
from policies.risk.base import Finding
from testkit.builders import code
from tests.conftest import store_at
from tests.security.kit import callers, consent_body


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL and Redis, as in production (one mode keeps tests/security fast)."""
    return store_at("postgresql", request)


ENTERPRISE = f"/v1/enterprises/{code(1)}"


@pytest.fixture
def who(app_client: TestClient, engine: Engine) -> dict[str, dict[str, str]]:
    return callers(app_client, engine)


def _alert(engine: Engine) -> str:
    finding = Finding(
        rule="overdue_default", severity="high", subject="loan:kechuangtong:KCT-9",
        title="还款逾期", evidence=("loan:kct:9",), credit_code=code(1), details={},
    )  # fmt: skip
    with engine.begin() as conn:
        return apply_finding(conn, finding, datetime.now(UTC))[0]


def test_another_banks_consent_is_404_everywhere_and_untouched(
    app_client: TestClient, engine: Engine, who: dict[str, dict[str, str]]
) -> None:
    mine = app_client.post(
        "/v1/consents", json=consent_body(), headers={**who["bank"], "Idempotency-Key": "k-1"}
    ).json()
    other = who["other_bank"]
    for path in (f"/v1/consents/{mine['id']}", "/v1/consents/cns_never_was"):
        # Indistinguishable from a consent that does not exist.
        for answer in (
            app_client.get(path, headers=other),
            app_client.post(f"{path}/revoke", json={"reason": "x"}, headers=other),
        ):
            assert answer.status_code == 404, answer.text
            assert set(answer.json()) == {"type", "title", "status", "detail", "instance"}
            assert "bank" not in answer.text
    listed = app_client.get("/v1/consents", params={"credit_code": code(1)}, headers=other)
    assert listed.json()["items"] == []
    # Idempotency keys are per client: bank B reusing A's key gets its own consent,
    # neither A's answer replayed nor a 422 that would reveal A used the key.
    theirs = app_client.post(
        "/v1/consents",
        json=consent_body(grantee="CCB-CD"),
        headers={**other, "Idempotency-Key": "k-1"},
    )
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != mine["id"]
    assert "idempotent-replayed" not in theirs.headers
    # Bank B cannot use A's consent to read a report either.
    report = app_client.get(
        f"{ENTERPRISE}/credit-report", headers={**other, "Consent-Id": mine["id"]}
    )
    assert report.status_code == 403
    assert report.json()["reason"] == "not_found"
    assert "sections" not in report.json()
    with engine.connect() as conn:
        revoked = conn.execute(select(consents.c.revoked_at).where(consents.c.id == mine["id"]))
        assert revoked.scalar_one() is None


def test_risk_office_objects_are_not_for_banks_departments_or_platforms(
    app_client: TestClient, engine: Engine, who: dict[str, dict[str, str]]
) -> None:
    alert_id = _alert(engine)
    reads = [
        ("GET", f"/v1/alerts/{alert_id}"),
        ("GET", "/v1/alerts"),
        ("GET", f"{ENTERPRISE}/access-log"),
        ("GET", "/v1/loans"),
    ]
    writes = [f"/v1/alerts/{alert_id}/acknowledge", f"/v1/alerts/{alert_id}/resolve"]
    for name in ("bank", "department", "platform"):
        for method, path in reads:
            answer = app_client.request(method, path, headers=who[name])
            assert answer.status_code == 403, (name, path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert "KCT-9" not in answer.text  # nothing of the alert itself
        for path in writes:
            answer = app_client.post(path, json={"note": "不该能处理"}, headers=who[name])
            assert answer.status_code == 403, (name, path)
    with engine.connect() as conn:
        assert conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id)).scalar() == (
            "open"
        )
    # The office itself reads them: the 403s above are about the caller, not the object.
    for method, path in reads:
        assert app_client.request(method, path, headers=who["risk_office"]).status_code == 200
    regulator = who["regulator"]
    assert app_client.get(f"{ENTERPRISE}/access-log", headers=regulator).status_code == 200
    assert app_client.get(f"/v1/alerts/{alert_id}", headers=regulator).status_code == 403


# (caller, method, path, body): functions that belong to another kind of client.
FOREIGN_FUNCTIONS = [
    ("bank", "POST", "/v1/records/penalty", None),
    ("bank", "POST", "/v1/records/penalty/1/disputes", {"reason": "x"}),
    ("bank", "GET", "/v1/alerts/stream", None),
    ("department", "GET", f"{ENTERPRISE}/credit-report", None),
    ("department", "GET", ENTERPRISE, None),
    ("department", "POST", "/v1/consents", "consent"),
    ("department", "GET", "/v1/alerts", None),
    ("platform", "GET", f"{ENTERPRISE}/credit-report", None),
    ("platform", "POST", "/v1/records/penalty", None),
    (
        "platform",
        "POST",
        "/v1/records/penalty/1/disputes/dsp_x/resolve",
        {"outcome": "upheld", "note": "x"},
    ),
    ("risk_office", "GET", f"{ENTERPRISE}/credit-report", None),
    ("risk_office", "POST", "/v1/consents", "consent"),
    ("risk_office", "POST", "/v1/records/penalty", None),
    ("regulator", "POST", "/v1/alerts/alr_x/acknowledge", {"note": "x"}),
    ("regulator", "GET", f"{ENTERPRISE}/credit-report", None),
]


def test_each_function_belongs_to_its_client_type(
    app_client: TestClient, engine: Engine, who: dict[str, dict[str, str]]
) -> None:
    for name, method, path, body in FOREIGN_FUNCTIONS:
        kwargs: dict[str, object] = {"headers": who[name]}
        if body == "consent":
            kwargs["json"] = consent_body()
        elif isinstance(body, dict):
            kwargs["json"] = body
        elif method == "POST":
            kwargs["content"] = b'{"record_id": "R-1"}\n'
            kwargs["headers"] = {**who[name], "Content-Type": "application/x-ndjson"}
        answer = app_client.request(method, path, **kwargs)  # type: ignore[arg-type]
        assert answer.status_code == 403, (name, method, path, answer.text)
        assert answer.json()["type"].startswith("https://xyd-gateway.example/problems/")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(consents)).scalar() == 0


def test_platform_push_endpoints_ignore_oauth_tokens(
    app_client: TestClient, engine: Engine, who: dict[str, dict[str, str]]
) -> None:
    """A bank's (or even a platform client's) access token is not a platform signature."""
    pushes = {
        "/v1/platforms/kechuangtong/events": ("application/json", b'{"eventType": "x"}'),
        "/v1/platforms/chuangfu-tianfu/messages": ("application/jose", b"eyJhbGciOiJub25lIn0.e30."),
        "/v1/platforms/nongdaitong/messages": ("application/xml", b"<NDTMsg><Body/></NDTMsg>"),
    }
    for name in ("bank", "platform"):
        for path, (media_type, raw) in pushes.items():
            headers = {**who[name], "Content-Type": media_type}
            answer = app_client.post(path, content=raw, headers=headers)
            if path.endswith("nongdaitong/messages"):  # always 200; RspCode says no
                assert b"<RspCode>0000</RspCode>" not in answer.content
            else:
                assert answer.status_code in (401, 503), (path, answer.text)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(loan_events)).scalar() == 0
