"""Helpers for identity tests: clients with real keys, assertions, forged tokens."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy import Engine

from gateway.client import ASSERTION_TYPE, client_assertion
from gateway.identity.clients import create_client
from gateway.keys import jose
from gateway.records.binding import load_departments
from testkit.builders import MARKET

ISSUER = "http://testserver"
DEPARTMENTS = load_departments(Path(__file__).resolve().parents[1] / "config")


@dataclass
class ClientKey:
    client_id: str
    key: jose.PrivateKey
    kid: str

    def assertion(self, **overrides: Any) -> str:
        if not overrides:
            return client_assertion(self.client_id, self.key, audience=ISSUER, kid=self.kid)
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": ISSUER,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        header = {"alg": jose.alg_for(self.key)[0], "typ": "JWT", "kid": self.kid}
        header.update(overrides.pop("header", {}))
        claims.update(overrides)
        return jose.sign(header, {k: v for k, v in claims.items() if v is not None}, self.key)

    def form(self, assertion: str | None = None, **extra: str) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.assertion(),
            **extra,
        }


def new_key(kind: str = "ec") -> jose.PrivateKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "rsa":
        return rsa.generate_private_key(65537, 2048)
    return ec.generate_private_key(ec.SECP256R1())


def register(
    engine: Engine,
    client_id: str,
    client_type: str = "bank",
    kind: str = "ec",
    *,
    department: str = MARKET,
    categories: list[str] | None = None,
    **kwargs: Any,
) -> ClientKey:
    """A client with a key of its own; a department client is registered for
    `department` (config/departments.yaml), delivering `categories` (default:
    all it may)."""
    if client_type == "department":
        found = DEPARTMENTS.find(department)
        assert found is not None, f"{department} is not in config/departments.yaml"
        kwargs.update(department=found, categories=categories or list(found.categories))
    key = new_key(kind)
    public = jose.public_jwk(key)
    kid = f"{client_id}-k1"
    with engine.begin() as conn:
        create_client(
            conn,
            client_id=client_id,
            display_name=client_id,
            client_type=client_type,
            jwks={"keys": [{**public, "kid": kid}]},
            **kwargs,
        )
    return ClientKey(client_id, key, kid)
