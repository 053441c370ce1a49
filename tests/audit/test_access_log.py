"""An enterprise's access log: regulators see every decision about it, newest first."""

from __future__ import annotations

from sqlalchemy import Engine
from starlette.testclient import TestClient

from testkit.builders import code
from testkit.clients import ClientKey, register
from tests.identity.test_token_flow import get_token


def bearer(client: TestClient, key: ClientKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_token(client, key)}"}


def test_regulator_sees_allowed_and_denied_reads_with_who_and_why(
    app_client: TestClient, bank: ClientKey, engine: Engine
) -> None:
    regulator = register(engine, "pboc-cd", client_type="regulator", org_code="PBOC")
    nosy = register(engine, "dept-tax", client_type="department", org_code="TAX")
    assert app_client.get(f"/v1/enterprises/{code(1)}", headers=bearer(app_client, bank)).is_success
    forbidden = app_client.get(f"/v1/enterprises/{code(1)}", headers=bearer(app_client, nosy))
    assert forbidden.status_code == 403
    auth = bearer(app_client, regulator)
    log = app_client.get(f"/v1/enterprises/{code(1)}/access-log", headers=auth)
    assert log.status_code == 200, log.text
    items = log.json()["items"]
    assert [(i["client_id"], i["decision"], i["reason"]) for i in items] == [
        ("dept-tax", "deny", "insufficient-scope"),
        ("bank-a", "allow", None),
    ]
    assert items[1]["org_code"] == "BOCD"
    assert items[1]["route"] == "GET /v1/enterprises/{credit_code}"
    assert items[0]["seq"] > items[1]["seq"]
    # Reading the log is itself in the log.
    again = app_client.get(f"/v1/enterprises/{code(1)}/access-log", headers=auth).json()
    assert again["items"][0]["client_id"] == "pboc-cd"
    assert again["items"][0]["reason"] == "access log read"


def test_pages_with_an_opaque_cursor(
    app_client: TestClient, bank: ClientKey, engine: Engine
) -> None:
    regulator = register(engine, "pboc-cd", client_type="regulator", org_code="PBOC")
    auth_bank = bearer(app_client, bank)
    for _ in range(5):
        assert app_client.get(f"/v1/enterprises/{code(1)}", headers=auth_bank).is_success
    auth = bearer(app_client, regulator)
    url = f"/v1/enterprises/{code(1)}/access-log"
    first = app_client.get(url, params={"limit": 3}, headers=auth).json()
    second = app_client.get(
        url, params={"limit": 3, "cursor": first["next_cursor"]}, headers=auth
    ).json()
    seqs = [i["seq"] for i in first["items"] + second["items"]]
    assert len(seqs) == 5
    assert seqs == sorted(seqs, reverse=True)
    assert second["next_cursor"] is None


def test_scope_codes_limits_and_cursors_are_checked(
    app_client: TestClient, bank: ClientKey, engine: Engine
) -> None:
    regulator = register(engine, "pboc-cd", client_type="regulator", org_code="PBOC")
    auth = bearer(app_client, regulator)
    url = f"/v1/enterprises/{code(1)}/access-log"
    assert app_client.get(url, headers=bearer(app_client, bank)).status_code == 403
    assert app_client.get(url).status_code == 401
    bad_check = code(1)[:-1] + ("0" if code(1)[-1] != "0" else "1")
    answer = app_client.get(f"/v1/enterprises/{bad_check}/access-log", headers=auth)
    assert answer.status_code == 422
    assert "check" in answer.json()["detail"]
    unknown = code(99)
    assert app_client.get(f"/v1/enterprises/{unknown}/access-log", headers=auth).status_code == 404
    for params in ({"limit": 0}, {"limit": 201}, {"cursor": "abc"}, {"cursor": "-1"}):
        answer = app_client.get(url, params=params, headers=auth)
        assert answer.status_code == 422, params
        assert answer.headers["content-type"] == "application/problem+json"
