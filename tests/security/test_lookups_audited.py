"""Credit-code enumeration leaves a trace: a lookup of an unknown (404) or a
malformed (422) code is admitted and audited as a denial, exactly once, with the
code as given when it is one, and only a bounded digest when it is not."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from starlette.testclient import TestClient

from gateway.store.tables import audit_entries, enterprises
from testkit.builders import code
from tests.conftest import store_at
from tests.security.kit import callers, consent_body

MALFORMED = ["91510104000000001X", "A" * 300, "%3Cscript%3E'--"]


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL and Redis, as in production."""
    return store_at("postgresql", request)


@pytest.fixture
def bank(app_client: TestClient, engine: Engine) -> dict[str, str]:
    return callers(app_client, engine)["bank"]


def _seq(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(audit_entries.c.seq), 0))).scalar())


def _entries_after(engine: Engine, seq: int) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(audit_entries).where(audit_entries.c.seq > seq)))


def _one_denial(engine: Engine, before: int) -> Any:
    entries = _entries_after(engine, before)
    assert len(entries) == 1, entries
    assert entries[0].decision == "deny"
    return entries[0]


@pytest.mark.parametrize("suffix", ["", "/credit-report"])
def test_an_unknown_code_is_audited_once_with_the_code(
    app_client: TestClient, engine: Engine, bank: dict[str, str], suffix: str
) -> None:
    before = _seq(engine)
    answer = app_client.get(
        f"/v1/enterprises/{code(2)}{suffix}", headers={**bank, "Consent-Id": "cns_none"}
    )
    assert answer.status_code in (403, 404), answer.text  # no consent for it: 403 on reports
    entry = _one_denial(engine, before)
    assert entry.credit_code == code(2)


def test_a_report_for_an_enterprise_gone_from_the_registry_is_audited_once(
    app_client: TestClient, engine: Engine, bank: dict[str, str]
) -> None:
    granted = app_client.post(
        "/v1/consents", json=consent_body(), headers={**bank, "Idempotency-Key": "k-1"}
    ).json()
    with engine.begin() as conn:
        conn.execute(delete(enterprises).where(enterprises.c.credit_code == code(1)))
    before = _seq(engine)
    answer = app_client.get(
        f"/v1/enterprises/{code(1)}/credit-report", headers={**bank, "Consent-Id": granted["id"]}
    )
    assert answer.status_code == 404, answer.text
    entry = _one_denial(engine, before)
    assert entry.credit_code == code(1)
    assert entry.reason.startswith("unknown-enterprise")


@pytest.mark.parametrize("given", MALFORMED)
@pytest.mark.parametrize("suffix", ["", "/credit-report"])
def test_a_malformed_code_is_audited_once_as_a_bounded_digest(
    app_client: TestClient, engine: Engine, bank: dict[str, str], given: str, suffix: str
) -> None:
    before = _seq(engine)
    answer = app_client.get(f"/v1/enterprises/{given}{suffix}", headers=bank)
    assert answer.status_code == 422, answer.text
    entry = _one_denial(engine, before)
    assert entry.credit_code is None
    sent = given.replace("%3C", "<").replace("%3E", ">")
    digest = hashlib.sha256(sent.encode()).hexdigest()[:16]
    assert entry.reason.startswith("invalid-value")
    assert entry.reason.endswith(f"given-sha256:{digest}"), entry.reason
    assert sent not in entry.reason and len(entry.reason) <= 200
