"""DPoP proofs (RFC 9449): binding tokens to a key the client holds.

A proof is a JWS with `typ: dpop+jwt` carrying its public key in the `jwk`
header, over `htm` (method), `htu` (URL without query), `iat`, a single-use
`jti` and, with a token, `ath` (the token's SHA-256). The token's `cnf.jkt`
must be the thumbprint of that key.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.identity import jose
from gateway.identity.errors import InvalidToken
from gateway.identity.guard import TokenGuard

DPOP_TYP = "dpop+jwt"
DPOP_ALGS = frozenset({"ES256", "EdDSA", "PS256"})
MAX_AGE_S = 60


class InvalidProof(InvalidToken):
    type_slug, title = "invalid-dpop-proof", "Invalid DPoP proof"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, scheme="DPoP")
        self.extensions["error"] = "invalid_dpop_proof"
        self.headers["WWW-Authenticate"] = (
            f'DPoP error="invalid_dpop_proof", algs="{" ".join(sorted(DPOP_ALGS))}"'
        )


def token_hash(access_token: str) -> str:
    return jose.b64encode(hashlib.sha256(access_token.encode("ascii")).digest())


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof checked in every way but one: its jti is still to be spent.
    `once` is the key that spends it (set-if-absent until `expires`)."""

    jkt: str
    once: str
    expires: datetime


# Proof keys by thumbprint: a client signs every proof with the same key, and
# importing a JWK costs a fifth of a verification. The thumbprint covers every
# member that defines the key, so one thumbprint is one key.
_KEYS: dict[str, jose.PublicKey] = {}
_KEYS_MAX = 4096


def _proof_key(jwk: dict[str, object]) -> tuple[str, jose.PublicKey]:
    jkt = jose.thumbprint(jwk)
    key = _KEYS.get(jkt)
    if key is None:
        key = jose.public_key_from_jwk(jwk)
        if len(_KEYS) >= _KEYS_MAX:
            _KEYS.pop(next(iter(_KEYS)))
        _KEYS[jkt] = key
    return jkt, key


def check_proof(
    proof: str | None,
    *,
    method: str,
    url: str,
    access_token: str | None = None,
    future_s: int = 10,
) -> Proof:
    """Check a proof for this request, all but spending its jti (the caller
    must spend `Proof.once` before answering: the gate does, in its script)."""
    if not proof:
        raise InvalidProof("a DPoP proof is required")
    try:
        compact = jose.parse(proof, allow_jwk_header=True)
    except jose.JoseError as exc:
        raise InvalidProof(str(exc)) from None
    header, claims = compact.header, compact.claims
    if header.get("typ") != DPOP_TYP:
        raise InvalidProof("typ must be dpop+jwt")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or "d" in jwk:
        raise InvalidProof("the jwk header must hold a public key")
    try:
        jkt, key = _proof_key(jwk)
        jose.verify(compact, key, DPOP_ALGS)
    except jose.JoseError as exc:
        raise InvalidProof(str(exc)) from None
    if claims.get("htm") != method:
        raise InvalidProof("htm does not match the request method")
    if claims.get("htu") != url:
        raise InvalidProof("htu does not match the request URL")
    iat, now = claims.get("iat"), time.time()
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise InvalidProof("iat is required")
    if iat > now + future_s or iat < now - MAX_AGE_S:
        raise InvalidProof("proof too old or from the future")
    if access_token is not None and claims.get("ath") != token_hash(access_token):
        raise InvalidProof("ath does not match the access token")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 200:
        raise InvalidProof("jti of 8-200 characters is required")
    expires = datetime.fromtimestamp(iat + MAX_AGE_S + future_s, UTC)
    return Proof(jkt, f"dpop:{jkt}:{jti}", expires)


def replayed() -> InvalidProof:
    return InvalidProof("proof replayed (jti already used)")


async def verify_proof(
    proof: str | None,
    *,
    method: str,
    url: str,
    guard: TokenGuard,
    access_token: str | None = None,
) -> str:
    """Check a proof and spend its jti; return its key's thumbprint (jkt)."""
    checked = check_proof(proof, method=method, url=url, access_token=access_token)
    if not await guard.first_use(checked.once, checked.expires):
        raise replayed()
    return checked.jkt
