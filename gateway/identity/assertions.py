"""Client authentication by `private_key_jwt` (RFC 7523), FAPI 2.0 rules.

Stricter than Authlib's defaults: PS256, ES256 or EdDSA only; `aud` must be
the issuer (or, outside strict mode, the token endpoint URL); `exp` at most
five minutes ahead; the `jti` is single-use through an atomic set-if-absent;
a token of another kind (access token, DPoP proof) is refused by its `typ`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from gateway.identity.clients import Client
from gateway.identity.errors import InvalidClient
from gateway.identity.guard import TokenGuard
from gateway.keys import jose
from gateway.settings import Settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = frozenset({"PS256", "ES256", "EdDSA"})
_OTHER_TYPS = {"at+jwt", "application/at+jwt", "dpop+jwt", "xyd-report+jws", "xyd-ack+jws"}


def unverified_client_id(assertion: str) -> str:
    try:
        claims = jose.parse(assertion).claims
    except jose.JoseError as exc:
        raise InvalidClient(f"client assertion: {exc}") from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise InvalidClient("client assertion: iss is required")
    return issuer


def _check_time(claims: dict[str, Any], settings: Settings, strict: bool) -> tuple[int, int]:
    """(exp, the earliest second the assertion could have been accepted): its
    `iat`, or without one the earliest its `exp` allows."""
    now, leeway = time.time(), settings.clock_leeway_s
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise InvalidClient("client assertion: exp is required")
    if now >= exp + leeway:
        raise InvalidClient("client assertion expired")
    if exp > now + settings.assertion_max_lifetime_s + leeway:
        # Authlib's PrivateKeyJWT signs for an hour by default: say what to change.
        raise InvalidClient(
            f"client assertion: exp is {exp - int(now)} s ahead; this gateway accepts at most "
            f"{settings.assertion_max_lifetime_s} s: sign each assertion for "
            f"{settings.assertion_max_lifetime_s} s or less"
        )
    if iat is not None:
        future = 10 if strict else leeway
        if not isinstance(iat, int) or isinstance(iat, bool) or iat > now + future:
            raise InvalidClient("client assertion: iat in the future")
        return exp, iat
    return exp, exp - settings.assertion_max_lifetime_s - leeway


async def authenticate_client(
    assertion: str, client: Client | None, settings: Settings, guard: TokenGuard
) -> Client:
    """Verify the assertion for `client` (looked up by its `iss`); return the client."""
    try:
        compact = jose.parse(assertion)
    except jose.JoseError as exc:
        raise InvalidClient(f"client assertion: {exc}") from None
    if str(compact.header.get("typ", "")).lower() in _OTHER_TYPS:
        raise InvalidClient("client assertion: wrong typ")
    claims = compact.claims
    if client is None or client.disabled:
        raise InvalidClient("unknown or disabled client")
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise InvalidClient("client assertion: iss and sub must both be the client id")
    strict = settings.fapi2_strict or client.fapi2_strict
    audiences = {settings.issuer} if strict else {settings.issuer, f"{settings.issuer}/oauth/token"}
    aud = claims.get("aud")
    given = set(aud) if isinstance(aud, list) and all(isinstance(a, str) for a in aud) else {aud}
    if not given & audiences:
        raise InvalidClient("client assertion: wrong aud")
    exp, issued_s = _check_time(claims, settings, strict)
    _check_signature(compact, client)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 200:
        raise InvalidClient("client assertion: jti of 8-200 characters is required")
    expires_at = datetime.fromtimestamp(exp + settings.clock_leeway_s, UTC)
    once = f"assertion:{client.client_id}:{jti}"
    if not await guard.first_use(once, expires_at, issued_s, signed_s=exp):
        raise InvalidClient(
            "client assertion replayed (jti already used), or issued before the gateway "
            "lost its record of used ones: sign a new one with iat"
        )
    return client


def _check_signature(compact: jose.Compact, client: Client) -> None:
    kid = compact.header.get("kid")
    try:
        keys = client.public_keys()
    except jose.JoseError as exc:
        raise InvalidClient(f"registered key unusable: {exc}") from None
    candidates = [key for key_id, key in keys if kid is None or key_id == kid]
    for key in candidates:
        try:
            jose.verify(compact, key, ASSERTION_ALGS)
            return
        except jose.JoseError:
            continue
    raise InvalidClient("client assertion: not signed by a registered key")
