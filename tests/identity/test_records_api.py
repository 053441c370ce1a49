"""POST /v1/records/{category}: per-line results, idempotency, size and media type."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from gateway.store.tables import records
from testkit.builders import ndjson, penalty
from testkit.clients import ClientKey, register
from tests.identity.test_token_flow import get_token

NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def department(engine: Engine) -> ClientKey:
    return register(engine, "dept-market", client_type="department")


@pytest.fixture
def auth(app_client: TestClient, department: ClientKey) -> dict[str, str]:
    return {**NDJSON, "Authorization": f"Bearer {get_token(app_client, department)}"}


def post(
    client: TestClient, headers: dict[str, str], body: bytes, category: str = "penalty"
) -> Any:
    return client.post(f"/v1/records/{category}", content=body, headers=headers)


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(records)).scalar_one())


def test_batch_gives_per_line_results(app_client: TestClient, auth: dict, engine: Engine) -> None:
    before = stored(engine)
    body = ndjson(penalty(1), penalty(2, fine_wan="lots")) + b"{broken\n" + ndjson(penalty(1))
    answer = post(app_client, auth, body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["summary"] == {"accepted": 1, "updated": 0, "duplicate": 1, "rejected": 2}
    assert [(r["line"], r["outcome"]) for r in result["results"]] == [
        (1, "accepted"), (2, "rejected"), (3, "rejected"), (4, "duplicate"),
    ]  # fmt: skip
    assert "fine_wan" in result["results"][1]["reason"]
    assert stored(engine) == before + 1
    from gateway.store.tables import audit_entries

    with engine.connect() as conn:
        entry = conn.execute(select(audit_entries).order_by(audit_entries.c.seq.desc())).first()
    assert entry is not None
    assert (entry.client_id, entry.route) == ("dept-market", "POST /v1/records/{category}")


def test_idempotency_key(app_client: TestClient, auth: dict, engine: Engine) -> None:
    body = ndjson(penalty(5), penalty(6))
    keyed = {**auth, "Idempotency-Key": "batch-2026-11-27-001"}
    first = post(app_client, keyed, body)
    again = post(app_client, keyed, body)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # the first answer, not "duplicate" lines
    assert first.json()["summary"]["accepted"] == 2
    other_body = post(app_client, keyed, ndjson(penalty(7)))
    assert other_body.status_code == 422
    assert "another request body" in other_body.json()["detail"]
    assert (
        post(app_client, {**auth, "Idempotency-Key": "bad key with spaces"}, body).status_code
        == 400
    )


def test_media_type_size_category_and_scope(
    app_client: TestClient, auth: dict, engine: Engine, id_settings: Any
) -> None:
    as_json = post(app_client, {**auth, "Content-Type": "application/json"}, ndjson(penalty(1)))
    assert as_json.status_code == 415
    assert as_json.headers["content-type"] == "application/problem+json"
    assert post(app_client, auth, ndjson(penalty(1)), category="gossip").status_code == 404
    huge = b"x" * (id_settings.max_body_bytes + 1)
    assert post(app_client, auth, huge).status_code == 413
    bank = register(engine, "bank-x")
    bank_headers = {**NDJSON, "Authorization": f"Bearer {get_token(app_client, bank)}"}
    assert post(app_client, bank_headers, ndjson(penalty(1))).status_code == 403
    assert post(app_client, NDJSON, ndjson(penalty(1))).status_code == 401


def test_a_platform_may_not_deliver_records(app_client: TestClient, engine: Engine) -> None:
    platform = register(engine, "kct", client_type="platform", org_code="KCT")
    headers = {**NDJSON, "Authorization": f"Bearer {get_token(app_client, platform)}"}
    before = stored(engine)
    answer = post(app_client, headers, ndjson(penalty(1)))
    assert answer.status_code == 403
    assert "department" in answer.json()["detail"]
    assert stored(engine) == before
    from gateway.store.tables import audit_entries

    with engine.connect() as conn:
        entry = conn.execute(select(audit_entries).order_by(audit_entries.c.seq.desc())).first()
    assert entry is not None
    assert (entry.client_id, entry.decision, entry.reason) == ("kct", "deny", "forbidden")


def test_blank_cells_and_rejections_answer_nothing_personal(
    app_client: TestClient, auth: dict
) -> None:
    person = penalty(1, credit_code="", party_category="自然人", subject_name="王小明")
    person.update(legal_rep_name="", legal_rep_id_number="")
    chinese = {"信息唯一标识" if k == "record_id" else k: v for k, v in penalty(2).items()}
    chinese["decision_date"] = "13812345678"  # a phone number in the wrong column
    answer = post(app_client, auth, ndjson(person, chinese))
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["results"]
    assert (first["outcome"], first["record_id"]) == ("accepted", "P-000001")
    assert (second["outcome"], second["record_id"]) == ("rejected", "P-000002")
    assert "decision_date" in second["reason"]
    for secret in ("王小明", "13812345678", "张三丰"):
        assert secret not in answer.text
