"""A write and its audit entry commit together or not at all, and a PostgreSQL
restart costs no request: held connections are checked before use."""

from __future__ import annotations

from pathlib import Path

from httpx import Response
from sqlalchemy import Engine, func, select, text
from starlette.testclient import TestClient

from gateway.alerts.service import get as get_alert
from gateway.app import create_app
from gateway.store.tables import (
    audit_entries,
    consent_events,
    consents,
    record_disputes,
    records,
)
from testkit.builders import code
from testkit.clients import register
from testkit.services import Postgres, redis_server
from tests.alerts.test_alerts import raise_alert
from tests.faults.conftest import audit_verified, gateway_settings, seed_enterprises
from tests.policies.test_gate_http import stop as stop_redis
from tests.reports.test_reports_api import URL, bearer, consent, ingest, recent_penalty


def consent_entries(engine: Engine, consent_id: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_entries.c.route, audit_entries.c.decision).where(
                audit_entries.c.consent_id == consent_id
            )
        )
        return [(row.route, row.decision) for row in rows]


def test_first_requests_after_a_postgres_restart_succeed_and_are_audited(
    fault_pg: Postgres, pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    seed_enterprises(pg_engine, 1)
    bank = register(pg_engine, "bank-a", org_code="BOCD")
    settings = gateway_settings(tmp_path, pg_url, report_cache_entries=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        auth = bearer(client, bank)
        # Every held connection in use once: the audit writer's, the report reader's.
        first = consent(client, auth)
        assert client.get(URL, headers={**auth, "Consent-Id": first["id"]}).status_code == 200

        fault_pg.stop()
        fault_pg.start()

        again = consent(client, auth)  # asserts 201
        assert consent_entries(pg_engine, again["id"]) == [("POST /v1/consents", "allow")]
        enterprise = client.get(f"/v1/enterprises/{code(1)}", headers=auth)
        assert enterprise.status_code == 200, enterprise.text
        report = client.get(URL, headers={**auth, "Consent-Id": again["id"]})
        assert report.status_code == 200, report.text
    audit_verified(pg_engine)


def refuse_audit_entries(engine: Engine) -> None:
    """From now on the trail refuses every entry, as a full or broken disk would."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                " $$BEGIN RAISE EXCEPTION 'audit refused' USING ERRCODE = '53100'; END$$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_entries"
                " FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        )


def refused(answer: Response) -> bool:
    return answer.status_code == 503 and answer.headers["content-type"] == (
        "application/problem+json"
    )


def test_a_consent_whose_audit_entry_cannot_be_written_is_not_committed(
    pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    seed_enterprises(pg_engine, 1)
    bank = register(pg_engine, "bank-a", org_code="BOCD")
    settings = gateway_settings(tmp_path, pg_url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        auth = bearer(client, bank)
        kept = consent(client, auth)
        refuse_audit_entries(pg_engine)
        body = {
            "credit_code": code(1),
            "grantee": "BOCD",
            "purpose": "loan_application",
            "scopes": ["basic"],
            "valid_until": kept["valid_until"],
            "evidence": kept["evidence"],
        }
        created = client.post("/v1/consents", json=body, headers=auth)
        assert refused(created), created.text
        revoked = client.post(
            f"/v1/consents/{kept['id']}/revoke", json={"reason": "withdrawn"}, headers=auth
        )
        assert refused(revoked), revoked.text
    with pg_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(consents)).scalar_one() == 1
        assert conn.execute(select(consents.c.revoked_at)).scalar_one() is None
        events = conn.execute(select(func.count()).select_from(consent_events)).scalar_one()
    assert events == 1
    assert consent_entries(pg_engine, kept["id"]) == [("POST /v1/consents", "allow")]


def test_disputes_and_alerts_whose_audit_entry_cannot_be_written_are_not_changed(
    pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    seed_enterprises(pg_engine, 1)
    ingest(pg_engine, "penalty", recent_penalty(1), recent_penalty(2))
    with pg_engine.connect() as conn:
        first, second = conn.execute(
            select(records.c.id).where(records.c.category == "penalty").order_by(records.c.id)
        ).scalars()
    alert_id, _ = raise_alert(pg_engine)
    platform = register(pg_engine, "kct", client_type="platform", org_code="KCT")
    department = register(pg_engine, "dept-market", client_type="department", org_code="SAMR")
    office = register(pg_engine, "risk-office", client_type="risk_office", org_code="SANDBOX")
    settings = gateway_settings(tmp_path, pg_url)
    url = f"/v1/records/penalty/{first}/disputes"
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        by_platform, by_department = bearer(client, platform), bearer(client, department)
        by_office = bearer(client, office)
        opened = client.post(url, json={"reason": "已缴清"}, headers=by_platform)
        assert opened.status_code == 201, opened.text
        refuse_audit_entries(pg_engine)
        verdict = {"outcome": "rejected", "note": "处罚决定有效"}
        answers = [
            client.post(
                f"{url}/{opened.json()['id']}/resolve", json=verdict, headers=by_department
            ),
            client.post(
                f"/v1/records/penalty/{second}/disputes",
                json={"reason": "有误"},
                headers=by_platform,
            ),
            client.post(
                f"/v1/alerts/{alert_id}/acknowledge", json={"note": "n"}, headers=by_office
            ),
            client.post(f"/v1/alerts/{alert_id}/resolve", json={"note": "n"}, headers=by_office),
        ]
        assert [refused(a) for a in answers] == [True] * 4, [a.text for a in answers]
    with pg_engine.connect() as conn:
        assert [row.status for row in conn.execute(select(record_disputes))] == ["open"]
        assert get_alert(conn, alert_id)["status"] == "open"
        assert [h["action"] for h in get_alert(conn, alert_id)["history"]] == ["raised"]


def test_working_an_alert_is_audited(pg_url: str, pg_engine: Engine, tmp_path: Path) -> None:
    alert_id, _ = raise_alert(pg_engine)
    office = register(pg_engine, "risk-office", client_type="risk_office", org_code="SANDBOX")
    with TestClient(create_app(gateway_settings(tmp_path, pg_url))) as client:
        auth = bearer(client, office)
        for action in ("acknowledge", "resolve"):
            done = client.post(f"/v1/alerts/{alert_id}/{action}", json={"note": "n"}, headers=auth)
            assert done.status_code == 200, done.text
    with pg_engine.connect() as conn:
        rows = conn.execute(
            select(audit_entries.c.route, audit_entries.c.reason, audit_entries.c.credit_code)
            .where(audit_entries.c.client_id == "risk-office")
            .order_by(audit_entries.c.seq)
        )
        entries = [tuple(row) for row in rows]
    assert entries == [
        ("POST /v1/alerts/{alert_id}/acknowledge", f"alert {alert_id} acknowledged", code(1)),
        ("POST /v1/alerts/{alert_id}/resolve", f"alert {alert_id} resolved", code(1)),
    ]
    audit_verified(pg_engine)


def test_first_requests_after_a_redis_restart_succeed(
    pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    seed_enterprises(pg_engine, 1)
    bank = register(pg_engine, "bank-a", org_code="BOCD")
    with redis_server() as own:
        settings = gateway_settings(
            tmp_path, pg_url, redis_url=own.url, rate_limit_redis_down="fail_closed"
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            auth = bearer(client, bank)
            first = consent(client, auth)
            assert client.get(URL, headers={**auth, "Consent-Id": first["id"]}).status_code == 200
            stop_redis(own.pid())
            with redis_server(own.port):
                again = consent(client, auth)  # asserts 201
                enterprise = client.get(f"/v1/enterprises/{code(1)}", headers=auth)
                assert enterprise.status_code == 200, enterprise.text
    assert consent_entries(pg_engine, again["id"]) == [("POST /v1/consents", "allow")]
