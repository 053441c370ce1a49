"""Disputes (异议): opened for the enterprise, shown on reports, resolved with the outcome kept."""

from __future__ import annotations

from sqlalchemy import Engine
from starlette.testclient import TestClient

from testkit.clients import ClientKey, register
from tests.reports.test_reports_api import (
    after_data_change,
    bearer,
    consent,
    fetch,
    ingest,
    recent_penalty,
)


def penalty_item(client: TestClient, auth: dict[str, str], consent_id: str) -> dict:  # type: ignore[type-arg]
    answer = fetch(client, auth, consent_id)
    assert answer.status_code == 200, answer.text
    [item] = answer.json()["sections"]["penalties"]["items"]
    return dict(item)


def test_dispute_lifecycle_is_visible_on_the_reports(
    app_client: TestClient, bank: ClientKey, engine: Engine
) -> None:
    ingest(engine, "penalty", recent_penalty())
    bank_auth = bearer(app_client, bank)
    granted = consent(app_client, bank_auth)
    item = penalty_item(app_client, bank_auth, granted["id"])
    assert "dispute" not in item
    platform = bearer(app_client, register(engine, "kct", client_type="platform", org_code="KCT"))
    department = bearer(
        app_client, register(engine, "dept-market", client_type="department", org_code="SAMR")
    )
    url = f"/v1/records/penalty/{item['record_id']}/disputes"
    opened = app_client.post(
        url,
        json={"reason": "罚款已缴清，处罚决定已撤销"},
        headers={**platform, "Idempotency-Key": "k-1"},
    )
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    assert (dispute["status"], dispute["opened_by"]) == ("open", "kct")
    replay = app_client.post(
        url,
        json={"reason": "罚款已缴清，处罚决定已撤销"},
        headers={**platform, "Idempotency-Key": "k-1"},
    )
    assert replay.json() == dispute
    assert replay.headers["idempotent-replayed"] == "true"
    assert app_client.post(url, json={"reason": "again"}, headers=platform).status_code == 409
    after_data_change(app_client)
    shown = penalty_item(app_client, bank_auth, granted["id"])
    assert shown["dispute"]["status"] == "open"
    assert shown["dispute"]["opened_at"] == dispute["opened_at"]

    resolve = f"{url}/{dispute['id']}/resolve"
    verdict = {"outcome": "rejected", "note": "处罚决定有效"}
    assert app_client.post(resolve, json=verdict, headers=platform).status_code == 403
    assert app_client.post(resolve, json=verdict, headers=bank_auth).status_code == 403
    done = app_client.post(resolve, json=verdict, headers=department)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["resolved_by"]) == ("rejected", "dept-market")
    assert app_client.post(resolve, json=verdict, headers=department).status_code == 409
    after_data_change(app_client)
    after = penalty_item(app_client, bank_auth, granted["id"])
    assert after["dispute"]["status"] == "rejected"
    assert after["dispute"]["resolved_at"] == done.json()["resolved_at"]


def test_dispute_input_is_checked(app_client: TestClient, engine: Engine) -> None:
    ingest(engine, "penalty", recent_penalty())
    platform = bearer(app_client, register(engine, "kct", client_type="platform", org_code="KCT"))
    good = {"reason": "有误"}
    cases = [
        ("/v1/records/penalty/999999/disputes", good, 404),
        ("/v1/records/license/1/disputes", good, 404),  # record 1 is not a licence
        ("/v1/records/nonsense/1/disputes", good, 404),
        ("/v1/records/penalty/abc/disputes", good, 422),
        (f"/v1/records/penalty/{2**63}/disputes", good, 422),
        ("/v1/records/penalty/0/disputes", good, 422),
        ("/v1/records/penalty/1/disputes", {"reason": ""}, 422),
        ("/v1/records/penalty/1/disputes", {"reason": "x", "extra": 1}, 422),
        ("/v1/records/penalty/1/disputes", {"reason": 5}, 422),
        (
            "/v1/records/penalty/1/disputes/dsp_nope/resolve",
            {"outcome": "upheld", "note": "n"},
            403,
        ),
    ]
    for url, body, status in cases:
        answer = app_client.post(url, json=body, headers=platform)
        assert answer.status_code == status, (url, body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
