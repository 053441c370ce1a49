"""A bank-side reference client: private_key_jwt, token caching and refresh, and
the webhook verifier.

    client = GatewayClient.from_jwk_file("http://127.0.0.1:8000", ".xyd/demo/clients/demo-bank.jwk")
    answer = client.request("GET", "/v1/enterprises/9151...")
    event = verify_webhook(request_body, client.http.get("/.well-known/jwks.json").json())

It is what a bank's integration engineer would write; the gateway's tests and
`xyd demo token` / `xyd call` use it, so it is kept working.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.identity.dpop import token_hash
from gateway.keys import jose

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


WEBHOOK_TYP = "xyd-event+jwt"
WEBHOOK_EVENTS = frozenset({"consent.revoked", "consent.expired", "enterprise.changed"})


class RefusedToken(RuntimeError):
    """The token endpoint said no; the message carries its status and answer."""


class RefusedWebhook(ValueError):
    """A webhook body that is not an event the gateway signed; answer it 400 and drop it."""


def verify_webhook(body: bytes | str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The event a webhook POST carries, checked against the gateway's JWKS.

    The body is one compact JWS: header `typ` xyd-event+jwt, `alg` ES256 and a
    `kid` the JWKS holds (fetch the JWKS again on an unknown kid after the
    gateway rotates its keys). The event's `event_id` is the same on every
    retry: keep the ids seen and drop repeats.
    """
    token = body.decode("ascii", "replace") if isinstance(body, bytes) else body
    try:
        compact = jose.parse(token.strip())
    except jose.JoseError as exc:
        raise RefusedWebhook(f"not a signed event: {exc}") from None
    header = compact.header
    if header.get("typ") != WEBHOOK_TYP or header.get("alg") != "ES256":
        raise RefusedWebhook("not an xyd-event+jwt signed ES256")
    keys = {k.get("kid"): k for k in jwks.get("keys", []) if isinstance(k, dict)}
    jwk = keys.get(header.get("kid")) if isinstance(header.get("kid"), str) else None
    if jwk is None:
        raise RefusedWebhook("signed by a key the JWKS does not hold")
    try:
        jose.verify(compact, jose.public_key_from_jwk(jwk), frozenset({"ES256"}))
    except (jose.JoseError, ValueError) as exc:
        raise RefusedWebhook(f"signature not accepted: {exc}") from None
    event = compact.claims
    if event.get("type") not in WEBHOOK_EVENTS or not isinstance(event.get("event_id"), str):
        raise RefusedWebhook("not an event of a known type with an event_id")
    return event


def client_assertion(
    client_id: str,
    key: jose.PrivateKey,
    *,
    audience: str,
    kid: str | None = None,
    lifetime_s: int = 60,
    alg: str | None = None,
) -> str:
    """A fresh RFC 7523 client assertion (single-use jti, short exp)."""
    now = int(time.time())
    header: dict[str, Any] = {"alg": alg or jose.alg_for(key)[0], "typ": "JWT"}
    if kid:
        header["kid"] = kid
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime_s,
        "jti": secrets.token_urlsafe(16),
    }
    return jose.sign(header, claims, key)


def dpop_proof(
    key: jose.ClientPrivateKey, method: str, url: str, access_token: str | None = None
) -> str:
    """A fresh DPoP proof (RFC 9449) for one request."""
    claims: dict[str, Any] = {
        "htm": method,
        "htu": url,
        "iat": int(time.time()),
        "jti": secrets.token_urlsafe(16),
    }
    if access_token is not None:
        claims["ath"] = token_hash(access_token)
    header = {"typ": "dpop+jwt", "alg": jose.alg_for(key)[0], "jwk": jose.public_jwk(key)}
    return jose.sign(header, claims, key)


class GatewayClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        key: jose.PrivateKey,
        *,
        kid: str | None = None,
        issuer: str | None = None,
        http: httpx.Client | None = None,
        dpop: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id, self.key, self.kid = client_id, key, kid
        self.issuer = (issuer or self.base_url).rstrip("/")
        self.http = http or httpx.Client(base_url=self.base_url, timeout=10)
        self._token: str | None = None
        self._expires_at = 0.0
        # A DPoP key lives as long as the client object; tokens are bound to it.
        self.dpop_key = ec.generate_private_key(ec.SECP256R1()) if dpop else None

    @classmethod
    def from_jwk_file(cls, base_url: str, path: str | Path, **kwargs: Any) -> GatewayClient:
        jwk = orjson.loads(Path(path).read_bytes())
        key = jose.private_key_from_jwk(jwk)
        kwargs.setdefault("dpop", bool(jwk.get("dpop")))
        return cls(base_url, jwk["client_id"], key, kid=jwk.get("kid"), **kwargs)

    def token(self, scope: str | None = None) -> str:
        """A valid access token, fetched again a minute before it expires."""
        if self._token is None or time.time() > self._expires_at - 60:
            form = {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(
                    self.client_id, self.key, audience=self.issuer, kid=self.kid
                ),
            }
            if scope:
                form["scope"] = scope
            headers = {}
            if self.dpop_key is not None:
                headers["DPoP"] = dpop_proof(self.dpop_key, "POST", f"{self.issuer}/oauth/token")
            answer = self.http.post("/oauth/token", data=form, headers=headers)
            if answer.status_code != 200:
                raise RefusedToken(f"token request refused: {answer.status_code} {answer.text}")
            body = answer.json()
            self._token, self._expires_at = body["access_token"], time.time() + body["expires_in"]
        assert self._token is not None
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = self.token()
        headers = dict(kwargs.pop("headers", {}))
        if self.dpop_key is None:
            headers["Authorization"] = f"Bearer {token}"
        else:
            headers["Authorization"] = f"DPoP {token}"
            url = self.issuer + path.split("?")[0]
            headers["DPoP"] = dpop_proof(self.dpop_key, method.upper(), url, token)
        return self.http.request(method, path, headers=headers, **kwargs)
