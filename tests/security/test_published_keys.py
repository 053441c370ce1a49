"""The JWKS banks verify reports with comes from the keys the KEK opens, not from a
column the store's owner can rewrite."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, update

from gateway.keys import jose
from gateway.keys.store import create_key, load_ring
from gateway.store.tables import signing_keys


def test_a_public_key_swapped_in_the_store_is_not_published(engine: Engine) -> None:
    kek = os.urandom(32)
    with engine.begin() as conn:
        kid = create_key(conn, kek, "report", "ES256", datetime.now(UTC) - timedelta(seconds=1))
    attacker = jose.public_jwk(ec.generate_private_key(ec.SECP256R1()))
    with engine.begin() as conn:
        conn.execute(
            update(signing_keys).where(signing_keys.c.kid == kid).values(public_jwk=attacker)
        )
    with engine.connect() as conn:
        ring = load_ring(conn, kek)
    [published] = ring.jwks(datetime.now(UTC))["keys"]
    assert published["x"] != attacker["x"]
    assert published["x"] == jose.public_jwk(ring.keys[kid].private)["x"]
