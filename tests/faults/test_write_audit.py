"""A write and its audit entry commit together or not at all, and a PostgreSQL
restart costs no request: held connections are checked before use."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select, text
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.store.tables import audit_entries, consents
from tests.builders import code
from tests.faults.conftest import audit_verified, gateway_settings, seed_enterprises
from tests.identity.kit import register
from tests.reports.test_reports_api import URL, bearer, consent
from tests.policies.test_gate_http import stop as stop_redis
from tests.services import Postgres, redis_server


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


def test_a_consent_whose_audit_entry_cannot_be_written_is_not_committed(
    pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    seed_enterprises(pg_engine, 1)
    bank = register(pg_engine, "bank-a", org_code="BOCD")
    settings = gateway_settings(tmp_path, pg_url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        auth = bearer(client, bank)
        kept = consent(client, auth)
        # The trail refuses every entry from now on, as a full or broken disk would.
        with pg_engine.begin() as conn:
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
        body = {
            "credit_code": code(1),
            "grantee": "BOCD",
            "purpose": "loan_application",
            "scopes": ["basic"],
            "valid_until": kept["valid_until"],
            "evidence": kept["evidence"],
        }
        refused = client.post("/v1/consents", json=body, headers=auth)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        revoked = client.post(
            f"/v1/consents/{kept['id']}/revoke", json={"reason": "withdrawn"}, headers=auth
        )
        assert revoked.status_code == 503, revoked.text
    with pg_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(consents)).scalar_one() == 1
        row = conn.execute(select(consents.c.revoked_at)).one()
    assert row.revoked_at is None
    assert consent_entries(pg_engine, kept["id"]) == [("POST /v1/consents", "allow")]


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
