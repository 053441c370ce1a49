"""The report as a document: its recipient inside the signature, and the same
bytes again to that recipient alone (GET /v1/reports/{report_id})."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from starlette.testclient import TestClient

from gateway.audit.kept import purge
from gateway.state import state_of
from gateway.store.tables import audit_entries, issued_reports, report_cuts
from testkit.builders import code
from testkit.clients import ClientKey, register
from tests.reports.test_reports_api import (
    b64,
    bank_auth,
    bearer,
    consent,
    fetch,
    verify_with_jwks_only,
)

__all__ = ["bank_auth"]  # a fixture, used by name


def again(client: TestClient, auth: dict[str, str], report_id: str, **headers: str) -> Any:
    return client.get(f"/v1/reports/{report_id}", headers={**auth, **headers})


def entries(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(audit_entries).order_by(audit_entries.c.seq)))


@pytest.fixture
def other_bank(app_client: TestClient, engine: Engine) -> dict[str, str]:
    key: ClientKey = register(engine, "bank-b", org_code="CCBC")
    return bearer(app_client, key)


def test_the_recipient_and_validity_are_inside_the_signed_report(
    app_client: TestClient, bank_auth: dict[str, str]
) -> None:
    granted = consent(app_client, bank_auth)
    answer = fetch(app_client, bank_auth, granted["id"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    signature = body.pop("signature")
    assert body["recipient"] == {"client_id": "bank-a", "org_code": "BOCD"}
    assert (body["consent_id"], body["purpose"]) == (granted["id"], "loan_application")
    generated = datetime.fromisoformat(body["generated_at"])
    valid_until = datetime.fromisoformat(body["valid_until"])
    assert generated < valid_until <= generated + timedelta(days=30)
    assert verify_with_jwks_only(app_client, body, signature)
    # A leaked copy cannot be passed off as another bank's.
    body["recipient"]["client_id"] = "bank-b"
    assert not verify_with_jwks_only(app_client, body, signature)
    jws = fetch(app_client, bank_auth, granted["id"], Accept="application/jose")
    payload = json.loads(b64(jws.text.split(".")[1]))
    assert payload["recipient"] == {"client_id": "bank-a", "org_code": "BOCD"}
    assert "valid_until" in payload


def test_the_same_bytes_again_in_the_form_first_issued(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    granted = consent(app_client, bank_auth)
    first = fetch(app_client, bank_auth, granted["id"])
    report_id = first.json()["report_id"]
    back = again(app_client, bank_auth, report_id)
    assert back.status_code == 200, back.text
    assert back.headers["content-type"] == "application/json"
    assert back.headers["cache-control"] == "no-store"
    assert back.content == first.content
    # Its compact form carries the same signature over the same report.
    compact = again(app_client, bank_auth, report_id, Accept="application/jose")
    head, payload, signature = compact.text.split(".")
    report = first.json()
    assert f"{head}..{signature}" == report.pop("signature")
    assert json.loads(b64(payload)) == report

    jose_first = fetch(app_client, bank_auth, granted["id"], Accept="application/jose")
    jose_id = json.loads(b64(jose_first.text.split(".")[1]))["report_id"]
    jose_back = again(app_client, bank_auth, jose_id, Accept="application/jose")
    assert jose_back.headers["content-type"] == "application/jose"
    assert jose_back.content == jose_first.content
    as_json = again(app_client, bank_auth, jose_id).json()
    detached = as_json.pop("signature")
    assert verify_with_jwks_only(app_client, as_json, detached)

    page = again(app_client, bank_auth, report_id, Accept="text/html")
    assert page.status_code == 200
    assert report_id in page.text
    assert again(app_client, bank_auth, report_id, Accept="image/png").status_code == 406
    # Every fetch again is audited with the report it gave.
    allowed = [e for e in entries(engine) if e.route == "GET /v1/reports/{report_id}"]
    assert [e.decision for e in allowed] == ["allow"] * 5 + ["deny"]
    assert allowed[0].reason == f"report:{report_id}"
    assert (allowed[0].credit_code, allowed[0].consent_id) == (code(1), granted["id"])


def test_another_bank_and_an_unknown_id_get_the_same_404_each_audited_once(
    app_client: TestClient, bank_auth: dict[str, str], other_bank: dict[str, str], engine: Engine
) -> None:
    granted = consent(app_client, bank_auth)
    report_id = fetch(app_client, bank_auth, granted["id"]).json()["report_id"]
    before = len(entries(engine))
    foreign = again(app_client, other_bank, report_id)
    unknown = again(app_client, other_bank, "rpt_AAAAAAAAAAAAAAAA")
    malformed = again(app_client, bank_auth, "x" * 300)
    own_unknown = again(app_client, bank_auth, "rpt_AAAAAAAAAAAAAAAA")
    for answer in (foreign, unknown, malformed, own_unknown):
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
    bodies = [{**a.json(), "instance": None} for a in (foreign, unknown, malformed, own_unknown)]
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0]["type"].endswith("/report-not-found")
    written = entries(engine)[before:]
    assert [(e.client_id, e.decision, e.reason, e.credit_code) for e in written] == [
        ("bank-b", "deny", "report-not-found:other_recipient", code(1)),
        ("bank-b", "deny", "report-not-found:unknown", None),
        ("bank-a", "deny", "report-not-found:unknown", None),
        ("bank-a", "deny", "report-not-found:unknown", None),
    ]
    # The enterprise's access log (its audit entries) shows the other bank's attempt.
    with engine.connect() as conn:
        tried = conn.execute(
            select(func.count())
            .select_from(audit_entries)
            .where(audit_entries.c.credit_code == code(1), audit_entries.c.client_id == "bank-b")
        ).scalar_one()
    assert tried == 1


def test_past_retention_it_is_404_and_the_purge_removes_it(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    granted = consent(app_client, bank_auth)
    old = fetch(app_client, bank_auth, granted["id"]).json()["report_id"]
    recent = fetch(app_client, bank_auth, granted["id"]).json()["report_id"]
    settings = state_of(app_client.app).settings  # type: ignore[arg-type]
    retention = timedelta(days=settings.report_retention_days)
    assert retention == timedelta(days=1825)
    long_ago = datetime.now(UTC) - retention - timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(
            update(issued_reports)
            .where(issued_reports.c.report_id == old)
            .values(issued_at=long_ago)
        )
        conn.execute(update(report_cuts).values(created_at=long_ago - timedelta(days=3)))
    expired = again(app_client, bank_auth, old)
    assert expired.status_code == 404
    assert entries(engine)[-1].reason == "report-not-found:past_retention"
    assert again(app_client, bank_auth, recent).status_code == 200
    with engine.begin() as conn:
        # The cut is still cited by the recent report: only reports' age decides
        # (cuts are dated by their first use; here made old by hand).
        reports, _ = purge(conn, datetime.now(UTC) - retention)
        left = conn.execute(select(issued_reports.c.report_id)).scalars().all()
    assert reports == 1
    assert left == [recent]
    assert again(app_client, bank_auth, old).status_code == 404


def test_a_cut_is_stored_once_and_nothing_personal_in_clear(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    granted = consent(app_client, bank_auth)
    reports = [fetch(app_client, bank_auth, granted["id"]).json() for _ in range(3)]
    ids = {report["report_id"] for report in reports}
    with engine.connect() as conn:
        kept = conn.execute(select(issued_reports)).all()
        cuts = conn.execute(select(report_cuts)).all()
    assert {row.report_id for row in kept} == ids
    assert len(cuts) == 1
    assert {row.cut_sha256 for row in kept} == {cuts[0].sha256}
    assert all(row.client_id == "bank-a" for row in kept)
    stored = cuts[0].content + "".join(row.own for row in kept)
    masked = reports[0]["sections"]["penalties"]["items"][0]["legal_rep_masked"]
    assert masked in stored  # the legal representative, masked as the report shows
    assert "张三丰" not in stored
