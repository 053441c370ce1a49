"""GET /v1/loans: the ledger for risk officers and regulators."""

from __future__ import annotations

from sqlalchemy import Engine
from starlette.testclient import TestClient

from testkit.builders import code
from testkit.clients import ClientKey, register
from tests.identity.test_token_flow import get_token
from tests.loans.test_ledger import event, run


def test_ledger_listing_filters_and_pages(
    app_client: TestClient, bank: ClientKey, engine: Engine
) -> None:
    run(
        engine,
        event(1, "loan_disbursed", amount_fen=500, loan_no="KCT-1"),
        event(2, "repayment_overdue", 1, days_overdue=45, loan_no="KCT-1"),
        event(3, "application_submitted", loan_no="KCT-2", credit_code=code(2)),
        event(4, "loan_approved", loan_no="KCT-3", credit_code=None, borrower_hash="a" * 64),
    )
    office = register(engine, "risk-office", client_type="risk_office", org_code="SANDBOX")
    auth = {"Authorization": f"Bearer {get_token(app_client, office)}"}
    everything = app_client.get("/v1/loans", headers=auth)
    assert everything.status_code == 200, everything.text
    items = everything.json()["items"]
    assert [i["loan_no"] for i in items] == ["KCT-1", "KCT-2", "KCT-3"]
    assert items[0]["status"] == "overdue"
    assert items[0]["days_overdue"] == 45
    assert items[0]["outstanding_fen"] == 500
    assert items[2]["borrower"] == "natural_person"
    assert "borrower_hash" not in items[2]
    mine = app_client.get("/v1/loans", params={"credit_code": code(1)}, headers=auth).json()
    assert [i["loan_no"] for i in mine["items"]] == ["KCT-1"]
    overdue = app_client.get("/v1/loans", params={"status": "overdue"}, headers=auth).json()
    assert len(overdue["items"]) == 1
    first = app_client.get("/v1/loans", params={"limit": 2}, headers=auth).json()
    rest = app_client.get(
        "/v1/loans", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth
    ).json()
    assert [i["loan_no"] for i in first["items"] + rest["items"]] == ["KCT-1", "KCT-2", "KCT-3"]
    assert rest["next_cursor"] is None
    for params in ({"status": "lost"}, {"credit_code": "123"}, {"cursor": "x"}, {"limit": 0}):
        assert app_client.get("/v1/loans", params=params, headers=auth).status_code == 422
    banker = {"Authorization": f"Bearer {get_token(app_client, bank)}"}
    assert app_client.get("/v1/loans", headers=banker).status_code == 403
