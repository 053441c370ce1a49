"""The repair API over HTTP: a platform files, the deciding department reviews, an
approval publishes the credit_repair record and the next report respects it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from starlette.testclient import TestClient

from gateway.dashboard.repository import overdue_repairs
from gateway.repairs.commitment import load_commitment
from gateway.settings import Settings
from gateway.state import state_of
from gateway.store.tables import audit_entries, records, repair_applications
from testkit.builders import TAX, code
from testkit.clients import register
from tests.repairs.test_evidence import HTML_BYTES, PDF_BYTES, PNG_BYTES
from tests.reports.test_reports_api import (
    after_data_change,
    bearer,
    consent,
    fetch,
    ingest,
    recent_penalty,
)

Auth = dict[str, str]


def penalty_id(engine: Engine, source_record_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(records.c.id).where(records.c.source_record_id == source_record_id)
            ).scalar_one()
        )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def body(record_id: int, sha: str, *files: tuple[str, bytes], **extra: Any) -> dict[str, Any]:
    return {
        "credit_code": code(1),
        "record_id": record_id,
        "statement": "罚款已缴清，违法行为已整改",
        "commitment": {"accepted": True, "text_sha256": sha},
        "evidence": [
            {"file_name": name, "content_base64": b64(data)}
            for name, data in (files or (("缴款凭证.pdf", PDF_BYTES),))
        ],
        **extra,
    }


class World:
    def __init__(self, client: TestClient, engine: Engine) -> None:
        self.client = client
        ingest(engine, "penalty", recent_penalty(1, decision_date=_days_ago(120)))
        ingest(engine, "penalty", recent_penalty(2, decision_date=_days_ago(20)))
        self.eligible = penalty_id(engine, "P-NEW-1")
        self.too_early = penalty_id(engine, "P-NEW-2")
        self.platform = bearer(client, register(engine, "kct", client_type="platform"))
        self.market = bearer(client, register(engine, "dept-market", client_type="department"))
        self.tax = bearer(
            client, register(engine, "dept-tax", client_type="department", department=TAX)
        )
        self.sha = client.get("/v1/repairs/commitment", headers=self.platform).json()["text_sha256"]

    def apply(
        self, record_id: int | None = None, files: tuple[tuple[str, bytes], ...] = (), **kw: Any
    ) -> Any:
        sent = body(record_id or self.eligible, self.sha, *files, **kw)
        return self.client.post("/v1/repairs", json=sent, headers=self.platform)


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).date().isoformat()


@pytest.fixture
def world(app_client: TestClient, engine: Engine) -> World:
    return World(app_client, engine)


def test_commitment_is_shown_in_full(world: World, settings: Settings) -> None:
    text = world.client.get("/v1/repairs/commitment", headers=world.platform).json()
    commitment = load_commitment(settings.config_dir)
    assert text["text_zh"] == commitment.text.zh and "违背上述承诺" in text["text_zh"]
    assert text["text_en"].startswith("Regarding the administrative penalty")
    assert text["text_sha256"] == commitment.sha256


def test_apply_review_approve_and_the_next_report(world: World, engine: Engine) -> None:
    client, bank = world.client, bearer(world.client, register(engine, "bank-a", org_code="BOCD"))
    granted = consent(client, bank, scopes=["basic", "penalties", "commitments"])
    before = fetch(client, bank, granted["id"]).json()
    assert {i["record_id"] for i in before["sections"]["penalties"]["items"]} >= {world.eligible}

    applied = world.apply(files=(("凭证.pdf", PDF_BYTES), ("现场.png", PNG_BYTES)))
    assert applied.status_code == 201, applied.text
    application = applied.json()
    assert (application["status"], application["department"]) == ("pending", "成都市市场监督管理局")
    assert [e["media_type"] for e in application["evidence"]] == ["application/pdf", "image/png"]
    assert application["commitment"]["text_sha256"] == world.sha
    assert world.apply().status_code == 409  # one pending per penalty

    queue = client.get("/v1/repairs?status=pending", headers=world.market).json()["items"]
    assert [a["id"] for a in queue] == [application["id"]]
    assert client.get("/v1/repairs", headers=world.tax).json()["items"] == []
    one = client.get(f"/v1/repairs/{application['id']}", headers=world.market)
    assert one.json() == application
    file = client.get(
        f"/v1/repairs/{application['id']}/evidence/{application['evidence'][0]['id']}",
        headers=world.market,
    )
    assert file.content == PDF_BYTES
    assert file.headers["content-disposition"].startswith("attachment;")
    assert file.headers["x-content-type-options"] == "nosniff"
    assert file.headers["content-type"] == "application/pdf"

    url = f"/v1/repairs/{application['id']}/decision"
    approved = client.post(url, json={"decision": "approve"}, headers=world.market)
    assert approved.status_code == 200, approved.text
    decided = approved.json()
    assert decided["status"] == "approved"
    assert decided["decision"]["repair_record_id"] == f"CR-{application['id']}"
    again = client.post(url, json={"decision": "reject", "reason": "x"}, headers=world.market)
    assert again.status_code == 409

    after_data_change(client)
    after = fetch(client, bank, granted["id"]).json()
    shown = {i["record_id"] for i in after["sections"]["penalties"]["items"]}
    assert world.eligible not in shown and world.too_early in shown
    commitments = after["sections"]["commitments"]["items"]
    assert [c["commitment_type"] for c in commitments] == ["失信修复型"]
    assert commitments[0]["source_department"] == "成都市发展和改革委员会"
    assert after["data_version"] > before["data_version"]


def test_another_departments_application_is_unknown_to_it(world: World) -> None:
    application = world.apply().json()
    client = world.client
    for path in (f"/v1/repairs/{application['id']}", f"/v1/repairs/{application['id']}/evidence/1"):
        refused = client.get(path, headers=world.tax)
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    decision = client.post(
        f"/v1/repairs/{application['id']}/decision", json={"decision": "approve"}, headers=world.tax
    )
    assert decision.status_code == 404
    assert (
        client.get(f"/v1/repairs/{application['id']}", headers=world.market).json()["status"]
        == "pending"
    )


def test_reject_needs_a_reason_and_the_reason_is_kept(world: World) -> None:
    application = world.apply().json()
    url = f"/v1/repairs/{application['id']}/decision"
    client = world.client
    for bad in ({"decision": "reject"}, {"decision": "reject", "reason": "  "}, {"decision": "x"},
                {"decision": "approve", "extra": 1}):  # fmt: skip
        answer = client.post(url, json=bad, headers=world.market)
        assert answer.status_code == 422, (bad, answer.text)
    assert client.post(url, content=b"{", headers={**world.market,
                       "Content-Type": "application/json"}).status_code == 400  # fmt: skip
    rejected = client.post(
        url, json={"decision": "reject", "reason": "缴款凭证不清晰"}, headers=world.market
    )
    assert rejected.status_code == 200
    assert rejected.json()["decision"]["reason"] == "缴款凭证不清晰"
    assert world.apply().status_code == 201  # a new application once the last is decided


def test_what_cannot_be_applied_for(world: World, engine: Engine) -> None:
    early = world.apply(world.too_early)
    assert early.status_code == 422
    problem = early.json()
    assert (problem["reason"], problem["type"].endswith("/not-repairable")) == ("too_early", True)
    assert problem["earliest"] and "最短公示期未满" in problem["zh"]
    ingest(engine, "penalty", recent_penalty(3, credit_code=code(2), decision_date=_days_ago(120)))
    other = penalty_id(engine, "P-NEW-3")
    assert world.apply(other).status_code == 404  # not this enterprise's penalty
    stale = body(world.eligible, "0" * 64)
    assert world.client.post("/v1/repairs", json=stale, headers=world.platform).status_code == 422


def test_evidence_is_judged_by_content_and_bounded(world: World, settings: Settings) -> None:
    html = world.apply(files=(("证明.pdf", HTML_BYTES),))
    assert html.status_code == 415, html.text
    assert html.headers["content-type"] == "application/problem+json"
    assert world.apply(files=(("a.pdf", PDF_BYTES),) * 6).status_code == 422  # 5 at most
    limit = state_of(world.client.app).settings.repair_evidence_max_bytes  # type: ignore[arg-type]
    big = PDF_BYTES[:-6] + b"\0" * limit + b"%%EOF\n"
    assert world.apply(files=(("big.pdf", big),)).status_code == 413
    sent = world.client.post(
        "/v1/repairs",
        content=b"{" + b" " * (12 * 1024 * 1024),
        headers={**world.platform, "Content-Type": "application/json"},
    )
    assert sent.status_code == 413
    assert world.apply(files=(("a.pdf", b"%PDF-1.7 %%EOF"),), credit_code="91510104000000019X")\
        .status_code == 422  # fmt: skip


def test_scopes_and_client_types(world: World, engine: Engine) -> None:
    client = world.client
    bank = bearer(client, register(engine, "bank-b", org_code="CCB"))
    assert client.get("/v1/repairs").status_code == 401
    assert client.get("/v1/repairs", headers=bank).status_code == 403
    assert client.get("/v1/repairs", headers=world.platform).status_code == 403
    sent = body(world.eligible, world.sha)
    assert client.post("/v1/repairs", json=sent, headers=bank).status_code == 403
    # A department holds records:write but does not file for enterprises.
    assert client.post("/v1/repairs", json=sent, headers=world.market).status_code == 403
    assert client.post("/v1/repairs", data={"a": "b"}, headers=world.platform).status_code == 415
    assert client.get("/v1/repairs?status=nope", headers=world.market).status_code == 422
    assert client.get("/v1/repairs/%3Cscript%3E", headers=world.market).status_code == 422


def test_every_call_is_audited_once(world: World, engine: Engine) -> None:
    with engine.connect() as conn:
        start = conn.execute(
            select(audit_entries.c.seq).order_by(audit_entries.c.seq.desc())
        ).first()
    application = world.apply().json()
    world.client.get(f"/v1/repairs/{application['id']}", headers=world.tax)
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_entries.c.route, audit_entries.c.decision, audit_entries.c.reason)
            .where(audit_entries.c.seq > (start.seq if start else 0))
            .order_by(audit_entries.c.seq)
        ).all()
    routes = [(r.route, r.decision) for r in rows]
    assert routes.count(("POST /v1/repairs", "allow")) == 2  # the call, its commitment record
    assert any(r.reason and r.reason.startswith("record accepted: commitment") for r in rows)
    assert routes.count(("GET /v1/repairs/{application_id}", "deny")) == 1


def test_overdue_applications(world: World, engine: Engine) -> None:
    application = world.apply().json()
    with engine.begin() as conn:
        assert overdue_repairs(conn, datetime.now(UTC), 20)[0] == 0
        conn.execute(
            update(repair_applications)
            .where(repair_applications.c.id == application["id"])
            .values(review_due_at=datetime.now(UTC) - timedelta(hours=1))
        )
        count, late = overdue_repairs(conn, datetime.now(UTC), 20)
    assert (count, [r.id for r in late]) == (1, [application["id"]])


def test_an_idempotency_key_files_once(world: World) -> None:
    sent = body(world.eligible, world.sha)
    headers = {**world.platform, "Idempotency-Key": "repair-1"}
    first = world.client.post("/v1/repairs", json=sent, headers=headers)
    again = world.client.post("/v1/repairs", json=sent, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = world.client.post("/v1/repairs", json={**sent, "statement": "另"}, headers=headers)
    assert other.status_code == 422
