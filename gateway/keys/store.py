"""The gateway's own signing keys: stored encrypted, published, rotated, retired.

Lifecycle of a key, per purpose (`access_token`, `report`, `webhook`…):
created → published at once in the JWKS → used for signing from `not_before`
(after a delay that lets every process learn it first) → superseded by a
newer key, still published and accepted until `retire_after` (the last token
it signed has expired) → retired: gone from the JWKS and refused.

Private parts are AES-GCM encrypted under the key-encryption key (KEK); the
database never holds them in clear.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
)
from sqlalchemy import Connection, insert, or_, select, text, update

from gateway.keys import jose
from gateway.store.tables import signing_keys
from gateway.timeutil import aware

Purpose = Literal["access_token", "report", "audit", "platform_ack", "webhook"]
PURPOSES: tuple[Purpose, ...] = ("access_token", "report", "audit", "platform_ack", "webhook")
# Chuangfu Tianfu's spec demands ES256 acknowledgements, and banks' webhooks are
# specified ES256, whatever the deployment chose for its tokens.
FIXED_ALG: dict[str, SigningAlg] = {"platform_ack": "ES256", "webhook": "ES256"}
SigningAlg = Literal["ES256", "EdDSA"]


class KeyError_(Exception):
    """The key store cannot be used (e.g. the KEK does not decrypt it)."""


def _aad(kid: str, purpose: str) -> bytes:
    return f"{kid}:{purpose}".encode()


def _new_private(alg: SigningAlg) -> jose.PrivateKey:
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def create_key(
    conn: Connection, kek: bytes, purpose: Purpose, alg: SigningAlg, not_before: datetime
) -> str:
    """Create and store a key; return its kid."""
    private = _new_private(alg)
    kid = f"{purpose[:3]}-{secrets.token_hex(8)}"
    der = private.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    nonce = os.urandom(12)
    encrypted = nonce + AESGCM(kek).encrypt(nonce, der, _aad(kid, purpose))
    conn.execute(
        insert(signing_keys).values(
            kid=kid,
            purpose=purpose,
            alg=alg,
            public_jwk=jose.public_jwk(private),
            private_encrypted=encrypted,
            created_at=datetime.now(UTC),
            not_before=not_before,
        )
    )
    return kid


def rotate(
    conn: Connection,
    kek: bytes,
    purpose: Purpose,
    alg: SigningAlg,
    *,
    delay: timedelta,
    outlives: timedelta,
) -> str:
    """Add a key used for signing after `delay`; schedule the older ones' retirement.

    A superseded key stays published for `outlives` (the longest lifetime of
    anything it signed) after the new key takes over.
    """
    now = datetime.now(UTC)
    takes_over = now + delay
    conn.execute(
        update(signing_keys)
        .where(signing_keys.c.purpose == purpose, signing_keys.c.retire_after.is_(None))
        .values(retire_after=takes_over + outlives)
    )
    return create_key(conn, kek, purpose, alg, takes_over)


_KEY_CREATION_LOCK = 0x78_79_64_6B  # "xydk": one advisory lock id for key creation


def ensure_key(conn: Connection, kek: bytes, purpose: Purpose, alg: SigningAlg) -> None:
    """At start-up: make sure a purpose has a key usable now.

    Worker processes start together; without the lock each could find no key
    and make its own, then refuse the others' tokens until its next reload.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _KEY_CREATION_LOCK})
    now = datetime.now(UTC)
    usable = conn.execute(
        select(signing_keys.c.kid).where(
            signing_keys.c.purpose == purpose,
            signing_keys.c.not_before <= now,
            or_(signing_keys.c.retire_after.is_(None), signing_keys.c.retire_after > now),
        )
    ).first()
    if usable is None:
        create_key(conn, kek, purpose, alg, now)


@dataclass(frozen=True, slots=True)
class LoadedKey:
    kid: str
    purpose: str
    alg: str
    public: jose.PublicKey
    private: jose.PrivateKey
    public_jwk: dict[str, Any]
    not_before: datetime
    retire_after: datetime | None

    def live(self, now: datetime) -> bool:
        return self.retire_after is None or now < self.retire_after


@dataclass
class KeyRing:
    """The keys a process holds in memory: parsed once, looked up per request."""

    keys: dict[str, LoadedKey] = field(default_factory=dict)

    def verification_key(self, kid: object, purpose: str, now: datetime) -> LoadedKey | None:
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None or key.purpose != purpose or not key.live(now):
            return None
        return key

    def signing_key(self, purpose: str, now: datetime) -> LoadedKey:
        candidates = [
            k for k in self.keys.values()
            if k.purpose == purpose and k.not_before <= now and k.live(now)
        ]  # fmt: skip
        if not candidates:
            raise KeyError_(f"no usable {purpose} key; run `xyd keys rotate`")
        return max(candidates, key=lambda k: k.not_before)

    def jwks(self, now: datetime) -> dict[str, list[dict[str, Any]]]:
        published = sorted(
            (k for k in self.keys.values() if k.live(now)), key=lambda k: k.not_before
        )
        return {
            "keys": [{**k.public_jwk, "kid": k.kid, "use": "sig", "alg": k.alg} for k in published]
        }


def load_ring(conn: Connection, kek: bytes) -> KeyRing:
    now = datetime.now(UTC)
    ring = KeyRing()
    for row in conn.execute(select(signing_keys)):
        retire_after = aware(row.retire_after)
        if retire_after is not None and retire_after <= now:
            continue
        nonce, sealed = row.private_encrypted[:12], row.private_encrypted[12:]
        try:
            der = AESGCM(kek).decrypt(nonce, sealed, _aad(row.kid, row.purpose))
        except Exception as exc:  # InvalidTag: wrong KEK or tampered row
            raise KeyError_(f"key {row.kid} does not decrypt with this KEK") from exc
        private = load_der_private_key(der, password=None)
        assert isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
        not_before = aware(row.not_before)
        assert not_before is not None
        ring.keys[row.kid] = LoadedKey(
            kid=row.kid,
            purpose=row.purpose,
            alg=row.alg,
            public=private.public_key(),
            private=private,
            # From the key the KEK opened, never the row: the store's owner could swap it.
            public_jwk=jose.public_jwk(private),
            not_before=not_before,
            retire_after=retire_after,
        )
    return ring
