"""Credentials made ahead of a load run are what the gateway accepts, once each."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from httpx import Response
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.client import dpop_proof
from gateway.db import make_sync_engine
from gateway.keys import jose
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor
from gateway.settings import Settings
from loadtests.proofs import client_assertions, dpop_proofs
from testkit.builders import code, ndjson, registration
from testkit.clients import ISSUER, ClientKey, register

ENTERPRISE = f"/v1/enterprises/{code(1)}"


@pytest.fixture
def gateway(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[TestClient, ClientKey]]:
    """The gateway in process on SQLite, one enterprise, one FAPI 2.0 strict bank."""
    shutil.copy(sqlite_template, tmp_path / "xyd.db")
    settings = Settings(
        state_dir=tmp_path / ".xyd", database_url=f"sqlite:///{tmp_path / 'xyd.db'}",
        pii_key="test-pii-key", public_base_url=ISSUER, key_activation_delay_s=0,  # type: ignore[arg-type]
    )  # fmt: skip
    engine = make_sync_engine(settings)
    Ingestor(engine, "registration", b"test-pii-key", 10).run(
        read_ndjson(ndjson(registration(1)).splitlines()), "test"
    )
    bank = register(engine, "bank-fapi", fapi2_strict=True)
    engine.dispose()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, bank


def test_dpop_proofs_are_accepted_once(gateway: tuple[TestClient, ClientKey]) -> None:
    client, bank = gateway
    key = ec.generate_private_key(ec.SECP256R1())
    answer = client.post(
        "/oauth/token",
        data=bank.form(),
        headers={"DPoP": dpop_proof(key, "POST", f"{ISSUER}/oauth/token")},
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    proofs = list(dpop_proofs(key, "GET", ISSUER + ENTERPRISE, token, 3))
    assert len(set(proofs)) == 3
    assert len({jose.parse(p, allow_jwk_header=True).claims["jti"] for p in proofs}) == 3

    def call(proof: str) -> int:
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        return client.get(ENTERPRISE, headers=headers).status_code

    assert [call(p) for p in proofs] == [200, 200, 200]
    replayed = client.get(ENTERPRISE, headers={"Authorization": f"DPoP {token}", "DPoP": proofs[0]})
    assert replayed.status_code == 401
    assert "replayed" in replayed.json()["detail"]


def test_client_assertions_are_accepted_once(gateway: tuple[TestClient, ClientKey]) -> None:
    client, bank = gateway
    key = ec.generate_private_key(ec.SECP256R1())
    first, second = client_assertions(bank.client_id, bank.key, ISSUER, 2, kid=bank.kid)

    def token(assertion: str) -> Response:
        proof = dpop_proof(key, "POST", f"{ISSUER}/oauth/token")
        return client.post("/oauth/token", data=bank.form(assertion), headers={"DPoP": proof})

    assert token(first).status_code == 200
    assert token(second).status_code == 200
    replayed = token(first)
    assert replayed.status_code == 401, replayed.text
