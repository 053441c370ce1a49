"""OWASP API4, unrestricted resource consumption: pages, batch lines, XML.

Body size (413, declared or streamed) is proven in tests/health/test_operations.py;
regular expressions on untrusted input in test_regex_audit.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from adapters.nongdaitong.wire import MAX_BODY_BYTES, Refusal, parse_xml
from gateway.app import create_app
from gateway.settings import Settings
from gateway.store.tables import records
from testkit.builders import code, ndjson, penalty
from tests.conftest import store_at
from tests.security.kit import callers


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL and Redis, as in production."""
    return store_at("postgresql", request)


@pytest.fixture
def small_batches(id_settings: Settings) -> Iterator[TestClient]:
    id_settings.max_records_per_request = 5
    with TestClient(create_app(id_settings), raise_server_exceptions=False) as client:
        yield client


def _pages(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["name"] == "limit":
                    yield path, parameter["schema"]


def test_every_page_size_is_capped_and_enforced(small_batches: TestClient, engine: Engine) -> None:
    client = small_batches
    who = callers(client, engine)
    pages = dict(_pages(client.app.openapi()))  # type: ignore[attr-defined]
    expected = {
        "/v1/consents",
        "/v1/loans",
        "/v1/alerts",
        "/v1/enterprises/{credit_code}/access-log",
        "/v1/repairs",
    }
    assert expected <= set(pages)
    reader = {
        "/v1/consents": who["bank"],
        "/v1/loans": who["risk_office"],
        "/v1/alerts": who["risk_office"],
        "/v1/enterprises/{credit_code}/access-log": who["risk_office"],
        "/v1/repairs": who["department"],
    }
    for path, schema in pages.items():
        assert schema.get("maximum") is not None, f"{path}: limit has no maximum"
        url = path.replace("{credit_code}", code(1))
        top = int(schema["maximum"])
        over = client.get(url, params={"limit": top + 1}, headers=reader[path])
        assert over.status_code == 422, (path, over.text)
        assert "limit" in over.json()["detail"]
        assert client.get(url, params={"limit": top}, headers=reader[path]).status_code == 200


def test_a_records_batch_has_a_line_limit(small_batches: TestClient, engine: Engine) -> None:
    client = small_batches
    department = {
        **callers(client, engine)["department"],
        "Content-Type": "application/x-ndjson",
    }
    rows = [penalty(n, record_id=f"P-LIMIT-{n}") for n in range(1, 7)]
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(records)).scalar()
    too_many = client.post("/v1/records/penalty", content=ndjson(*rows), headers=department)
    assert too_many.status_code == 413, too_many.text
    assert too_many.headers["content-type"] == "application/problem+json"
    assert "at most 5 lines" in too_many.json()["detail"]
    # Lines split by a lone CR count too (bytes.splitlines splits there).
    carriage = ndjson(*rows).replace(b"\n", b"\r")
    assert client.post("/v1/records/penalty", content=carriage, headers=department).status_code == (
        413
    )
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(records)).scalar() == before
    enough = client.post("/v1/records/penalty", content=ndjson(*rows[:5]), headers=department)
    assert enough.status_code == 200, enough.text
    assert enough.json()["summary"]["accepted"] == 5


def test_deep_or_wide_xml_within_the_size_cap_parses_fast() -> None:
    depth = MAX_BODY_BYTES // len("<a></a>")
    shapes = {
        "deep": "<a>" * depth + "</a>" * depth,
        "wide": "<r>" + "<a x='1'/>" * (MAX_BODY_BYTES // 10) + "</r>",
        "long text": "<r>" + "x" * MAX_BODY_BYTES + "</r>",
        "many attributes": "<r " + " ".join(f"a{i}='1'" for i in range(20_000)) + "/>",
    }
    for name, text in shapes.items():
        started = time.perf_counter()
        parse_xml(text)
        assert time.perf_counter() - started < 2, name
    for bomb in (
        '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>',
        '<!DOCTYPE r SYSTEM "http://169.254.169.254/latest/meta-data/"><r/>',
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd">%p;]><r/>',
    ):
        with pytest.raises(Refusal):
            parse_xml(bomb)
