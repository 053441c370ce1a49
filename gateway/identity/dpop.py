"""DPoP proofs (RFC 9449): binding tokens to a key the client holds.

A proof is a JWS with `typ: dpop+jwt` carrying its public key in the `jwk`
header, over `htm` (method), `htu` (URL without query), `iat`, a single-use
`jti` and, with a token, `ath` (the token's SHA-256). The token's `cnf.jkt`
must be the thumbprint of that key.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.datastructures import Headers

from gateway.errors import BadRequest
from gateway.identity.errors import InvalidToken
from gateway.identity.guard import TokenGuard
from gateway.keys import jose

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


class RepeatedProof(BadRequest):
    """Two or more DPoP headers: RFC 9449 (4.3) allows exactly one, and which of
    them a proxy or a framework would pick is anyone's guess."""

    type_slug, title = "invalid-dpop-proof", "Invalid DPoP proof"

    def __init__(self) -> None:
        detail = "send exactly one DPoP header"
        super().__init__(detail, error="invalid_dpop_proof", error_description=detail)


def proof_header(headers: Headers) -> str | None:
    """The request's DPoP proof, if it has one; several are refused (`RepeatedProof`)."""
    found = headers.getlist("dpop")
    if len(found) > 1:
        raise RepeatedProof()
    return found[0] if found else None


def token_hash(access_token: str) -> str:
    return jose.b64encode(hashlib.sha256(access_token.encode("ascii")).digest())


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof checked in every way but one: its jti is still to be spent.
    `once` is the key that spends it (set-if-absent until `expires`);
    `issued_s` its `iat`."""

    jkt: str
    once: str
    expires: datetime
    issued_s: int


@dataclass(frozen=True, slots=True)
class _Header:
    """A proof header that passed the checks below, with its key imported."""

    header: dict[str, object]
    jkt: str
    key: jose.PublicKey


# A client signs every proof under the same header (typ, alg, its public key),
# so the header's base64url text stands for one decoded header, key and
# thumbprint: decoding, importing and hashing them happen once per client key,
# not per proof. Header checks are on the decoded bytes; the signature is
# still verified on every proof.
_HEADERS: dict[str, _Header] = {}
_HEADERS_MAX = 4096


def _checked_header(segment: str, header: dict[str, object]) -> _Header:
    if header.get("typ") != DPOP_TYP:
        raise InvalidProof("typ must be dpop+jwt")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or "d" in jwk:
        raise InvalidProof("the jwk header must hold a public key")
    try:
        checked = _Header(header, jose.thumbprint(jwk), jose.public_key_from_jwk(jwk))
    except jose.JoseError as exc:
        raise InvalidProof(str(exc)) from None
    if len(_HEADERS) >= _HEADERS_MAX:
        _HEADERS.pop(next(iter(_HEADERS)))  # the oldest: a flood of new headers only evicts
    _HEADERS[segment] = checked
    return checked


# The `ath` a proof must carry, by access token: a token comes with every proof
# until it expires. Only tokens that verified get here.
_ath = functools.lru_cache(maxsize=4096)(token_hash)


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
    segment = proof.partition(".")[0]
    known = _HEADERS.get(segment)
    try:
        compact = jose.parse(
            proof, allow_jwk_header=True, decoded={segment: known.header} if known else None
        )
    except jose.JoseError as exc:
        raise InvalidProof(str(exc)) from None
    claims = compact.claims
    checked = known or _checked_header(segment, compact.header)
    try:
        jose.verify(compact, checked.key, DPOP_ALGS)
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
    if access_token is not None and claims.get("ath") != _ath(access_token):
        raise InvalidProof("ath does not match the access token")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 200:
        raise InvalidProof("jti of 8-200 characters is required")
    expires = datetime.fromtimestamp(iat + MAX_AGE_S + future_s, UTC)
    return Proof(checked.jkt, f"dpop:{checked.jkt}:{jti}", expires, iat)


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
    if not await guard.first_use(
        checked.once, checked.expires, checked.issued_s, signed_s=checked.issued_s
    ):
        raise replayed()
    return checked.jkt
