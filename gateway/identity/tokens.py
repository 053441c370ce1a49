"""Access tokens (RFC 9068): issued here, verified on every protected request.

Verification cost on the hot path: a token seen before is a dictionary hit
(its signature and claims were checked once; expiry, revocation and the
client's state are checked on every request). A new token costs one
signature check with a key parsed at start-up (`KeyRing`), never per request.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.identity.clients import Client
from gateway.identity.errors import InvalidToken
from gateway.identity.guard import TokenGuard
from gateway.keys import jose
from gateway.keys.ring import KeyRingHolder
from gateway.settings import Settings

ACCESS_TYP = "at+jwt"
ACCESS_ALGS = frozenset({"ES256", "EdDSA"})
MAX_ACCESS_TOKEN_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as the verified access token says."""

    client_id: str
    client_type: str
    org_code: str | None
    scopes: frozenset[str]
    jti: str
    expires_at: int
    jkt: str | None  # DPoP key thumbprint when the token is sender-constrained
    # The consent an authorisation-code token was granted under: the report's
    # Consent-Id, read from the token rather than looked up.
    consent_id: str | None = None


def new_jti() -> str:
    return secrets.token_urlsafe(18)


class AccessTokens:
    def __init__(self, settings: Settings, keys: KeyRingHolder, guard: TokenGuard) -> None:
        self.settings = settings
        self.keys = keys
        self.guard = guard
        self._verified: dict[str, Caller] = {}

    async def issue(
        self,
        client: Client,
        scopes: frozenset[str],
        jkt: str | None = None,
        *,
        consent_id: str | None = None,
        jti: str | None = None,
    ) -> tuple[str, int]:
        """A signed token and its lifetime. The code flow names the `jti` in
        advance (`new_jti`) so that a code used twice can revoke it."""
        now = int(time.time())
        ttl = self.settings.access_token_ttl_s
        key = (await self.keys.current()).signing_key("access_token", datetime.now(UTC))
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": client.client_id,
            "aud": self.settings.token_audience,
            "client_id": client.client_id,
            "client_type": client.client_type,
            "scope": " ".join(sorted(scopes)),
            "jti": jti or new_jti(),
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
        }
        if client.org_code:
            claims["org"] = client.org_code
        if jkt:
            claims["cnf"] = {"jkt": jkt}
        if consent_id:
            claims["consent_id"] = consent_id
        header = {"typ": ACCESS_TYP, "alg": key.alg, "kid": key.kid}
        return jose.sign(header, claims, key.private), ttl

    async def verify(self, token: str, *, check_denylist: bool = True) -> Caller:
        """The caller behind `token`, or InvalidToken saying why not.

        Protected routes pass `check_denylist=False` because their gate asks
        the denylist in the same Redis round trip as the rate limits.
        """
        caller = self._verified.get(token)
        if caller is None:
            caller = await self._verify_new(token)
        if time.time() >= caller.expires_at + self.settings.clock_leeway_s:
            self._verified.pop(token, None)
            raise InvalidToken("token expired")
        if check_denylist and await self.guard.denied(caller.jti, caller.client_id):
            raise InvalidToken("token revoked or client disabled")
        return caller

    async def _verify_new(self, token: str) -> Caller:
        if len(token) > MAX_ACCESS_TOKEN_BYTES:
            raise InvalidToken("token too large")
        try:
            compact = jose.parse(token)
        except jose.JoseError as exc:
            raise InvalidToken(str(exc)) from None
        header = compact.header
        if str(header.get("typ", "")).lower() not in (ACCESS_TYP, "application/at+jwt"):
            raise InvalidToken("not an access token (typ must be at+jwt)")
        now = datetime.now(UTC)
        ring = await self.keys.current()
        key = ring.verification_key(header.get("kid"), "access_token", now)
        if key is None:
            key = (await self.keys.after_unknown_kid()).verification_key(
                header.get("kid"), "access_token", now
            )
        if key is None:
            raise InvalidToken("unknown or retired signing key")
        try:
            jose.verify(compact, key.public, ACCESS_ALGS & {key.alg})
        except jose.JoseError as exc:
            raise InvalidToken(str(exc)) from None
        caller = self._check_claims(compact.claims)
        if self.settings.token_cache_size:
            if len(self._verified) >= self.settings.token_cache_size:
                self._verified.clear()  # crude, but bounded and rare
            self._verified[token] = caller
        return caller

    def _check_claims(self, claims: dict[str, Any]) -> Caller:
        now, leeway = time.time(), self.settings.clock_leeway_s
        if claims.get("iss") != self.settings.issuer:
            raise InvalidToken("wrong issuer")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.settings.token_audience not in audiences:
            raise InvalidToken("wrong audience")
        exp, nbf, iat = claims.get("exp"), claims.get("nbf", 0), claims.get("iat")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, nbf, iat)):
            raise InvalidToken("exp, nbf and iat must be integers")
        assert isinstance(exp, int)
        assert isinstance(nbf, int)
        assert isinstance(iat, int)
        if now >= exp + leeway:
            raise InvalidToken("token expired")
        if nbf > now + leeway or iat > now + leeway:
            raise InvalidToken("token not yet valid")
        client_id, scope, jti = claims.get("client_id"), claims.get("scope"), claims.get("jti")
        if not (isinstance(client_id, str) and isinstance(scope, str) and isinstance(jti, str)):
            raise InvalidToken("client_id, scope and jti are required")
        if claims.get("sub") != client_id:
            raise InvalidToken("sub and client_id differ")
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        consent_id = claims.get("consent_id")
        return Caller(
            client_id=client_id,
            client_type=str(claims.get("client_type", "")),
            org_code=claims.get("org") if isinstance(claims.get("org"), str) else None,
            scopes=frozenset(scope.split()),
            jti=jti,
            expires_at=exp,
            jkt=jkt if isinstance(jkt, str) else None,
            consent_id=consent_id if isinstance(consent_id, str) else None,
        )
