"""Hostile and malformed input gets a 4xx problem, never a 500."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from testkit.clients import ClientKey
from tests.identity.test_token_flow import get_token

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\x00garbage",
        b"grant_type=client_credentials&grant_type=client_credentials",
        b"%%%%",
        b"client_assertion="
        + b"A" * 20_000
        + b"&grant_type=client_credentials"
        + b"&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        b"grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:"
        b"client-assertion-type:jwt-bearer&client_assertion=e30.e30.e30",
        b"",
    ],
)
def test_token_endpoint_bodies(app_client: TestClient, body: bytes) -> None:
    answer = app_client.post("/oauth/token", content=body, headers=FORM)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_revoke_and_introspect_need_client_auth(app_client: TestClient, path: str) -> None:
    answer = app_client.post(path, data={"token": "x"})
    assert answer.status_code in (400, 401)
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "code",
    ["%00", "9144030071526726X%0A", "..%2F..%2Fetc", "九" * 18, "x" * 300, "9144030071526726xg"],
)
def test_enterprise_codes(app_client: TestClient, bank: ClientKey, code: str) -> None:
    token = get_token(app_client, bank)
    answer = app_client.get(f"/v1/enterprises/{code}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code in (404, 422), answer.text
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "DPoP", "Bearer a.b", "Bearer ....", "Bearer e30.e30.", "Bearer \t"],
)
def test_odd_authorization_headers(app_client: TestClient, authorization: str) -> None:
    answer = app_client.get(
        "/v1/enterprises/9144030071526726XG", headers={"Authorization": authorization}
    )
    assert answer.status_code == 401
    assert "www-authenticate" in answer.headers


def test_records_endpoint_with_binary_body(app_client: TestClient, engine) -> None:  # type: ignore[no-untyped-def]
    from testkit.clients import register

    department = register(engine, "dept-h", client_type="department")
    headers = {
        "Authorization": f"Bearer {get_token(app_client, department)}",
        "Content-Type": "application/x-ndjson",
    }
    answer = app_client.post("/v1/records/penalty", content=b"\x00\xff" * 1000, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["summary"]["rejected"] == 1
    empty = app_client.post("/v1/records/penalty", content=b"", headers=headers)
    assert empty.status_code == 200
    assert empty.json()["results"] == []
