"""A bank-side reference client: private_key_jwt, token caching and refresh, the
enterprise-granted consent (PAR + authorise + token, FAPI 2.0), and the webhook
verifier.

    client = GatewayClient.from_jwk_file("http://127.0.0.1:8000", ".xyd/demo/clients/demo-bank.jwk")
    answer = client.request("GET", "/v1/enterprises/9151...")
    event = verify_webhook(request_body, client.http.get("/.well-known/jwks.json").json())

The code flow, with the enterprise's person in between:

    pushed = client.push(CreditReportAsk("9151...", "credit_review", ["basic"], until),
                         "https://bank.example/callback")
    # send the person's browser to pushed.authorize_url; the gateway sends it
    # back to the redirect URI, whose full URL the bank hands to callback():
    grant = client.redeem(client.callback(callback_url, pushed), pushed)
    report = client.request("GET", f"/v1/enterprises/{code}/credit-report", grant=grant)

Errors: RefusedToken (the token endpoint said no), RefusedPush (PAR said no),
RefusedCallback (a callback URL that is not the answer to this push: wrong
state or issuer, no code), AuthorizationDenied (the enterprise declined),
RefusedWebhook (a body that is not an event the gateway signed).

It is what a bank's integration engineer would write; the gateway's tests and
`xyd demo token` / `xyd call` use it, so it is kept working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.identity.dpop import token_hash
from gateway.keys import jose
from policies.consent import Purpose

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


WEBHOOK_TYP = "xyd-event+jwt"
WEBHOOK_EVENTS = frozenset({"consent.revoked", "consent.expired", "enterprise.changed"})


class RefusedToken(RuntimeError):
    """The token endpoint said no; the message carries its status and answer."""


class RefusedPush(RuntimeError):
    """POST /oauth/par said no: `status`, the OAuth `error`, and the whole answer
    (a 429's Retry-After is in `retry_after_s`)."""

    def __init__(self, answer: httpx.Response) -> None:
        body = _json_or_empty(answer)
        self.status = answer.status_code
        self.error = str(body.get("error", ""))
        retry = answer.headers.get("retry-after", "")
        self.retry_after_s = int(retry) if retry.isdigit() else None
        super().__init__(f"pushed request refused: {answer.status_code} {answer.text}")


class RefusedCallback(ValueError):
    """A callback URL that is not the gateway's answer to this push (another
    `state`, another `iss`, or neither code nor error): drop it, do not retry."""


class AuthorizationDenied(RuntimeError):
    """The authorisation did not happen: `error` is `access_denied` when the
    enterprise's person declined, or the OAuth error the gateway sent back."""

    def __init__(self, error: str, description: str | None) -> None:
        self.error, self.description = error, description
        super().__init__(f"{error}: {description}" if description else error)


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


def _json_or_empty(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True, slots=True)
class CreditReportAsk:
    """What the bank asks the enterprise to consent to: one `authorization_details`
    object of type `xyd_credit_report` (the rules of POST /v1/consents apply)."""

    credit_code: str
    purpose: Purpose
    sections: Sequence[str]
    valid_until: datetime  # aware
    max_daily_accesses: int | None = None  # post_loan_monitoring only

    def as_detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "type": "xyd_credit_report",
            "credit_code": self.credit_code,
            "purpose": self.purpose,
            "sections": list(self.sections),
            "valid_until": self.valid_until.isoformat(timespec="seconds"),
        }
        if self.max_daily_accesses is not None:
            detail["max_daily_accesses"] = self.max_daily_accesses
        return detail


@dataclass(frozen=True, slots=True)
class Pushed:
    """A pushed request, kept by the bank (e.g. in the browser's session) until the
    callback: the verifier and state never leave the bank's side."""

    request_uri: str
    expires_in: int
    authorize_url: str  # where to send the enterprise person's browser
    redirect_uri: str
    state: str
    code_verifier: str
    dpop_key: jose.ClientPrivateKey  # the tokens will be bound to it


@dataclass(slots=True)
class ConsentGrant:
    """The tokens of one enterprise-granted consent. `request(..., grant=)` keeps it
    fresh: the refresh token is rotated on every use, so only the newest works."""

    consent_id: str
    access_token: str
    expires_at: float
    refresh_token: str | None
    authorization_details: list[dict[str, Any]]
    dpop_key: jose.ClientPrivateKey = field(repr=False)


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


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
            form = self._authenticated({"grant_type": "client_credentials"})
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

    def request(
        self, method: str, path: str, *, grant: ConsentGrant | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A call with the client's own token, or with `grant`'s consent-bound one
        (refreshed a minute before it expires; no Consent-Id needed: it names it)."""
        headers = dict(kwargs.pop("headers", {}))
        key: jose.ClientPrivateKey | None
        if grant is not None:
            if grant.refresh_token is not None and time.time() > grant.expires_at - 60:
                self.refresh(grant)
            token, key = grant.access_token, grant.dpop_key
        else:
            token, key = self.token(), self.dpop_key
        if key is None:
            headers["Authorization"] = f"Bearer {token}"
        else:
            headers["Authorization"] = f"DPoP {token}"
            url = self.issuer + path.split("?")[0]
            headers["DPoP"] = dpop_proof(key, method.upper(), url, token)
        return self.http.request(method, path, headers=headers, **kwargs)

    # --- the enterprise grants the consent (FAPI 2.0 code flow) ----------------

    def _authenticated(self, form: dict[str, str]) -> dict[str, str]:
        assertion = client_assertion(self.client_id, self.key, audience=self.issuer, kid=self.kid)
        return {**form, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}

    def push(self, ask: CreditReportAsk, redirect_uri: str) -> Pushed:
        """PAR (RFC 9126): the request pushed with a fresh PKCE pair, state and
        DPoP proof; the URL to send the enterprise person's browser to.
        RefusedPush if the gateway says no (400 naming the fault, 429 too fast)."""
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        # FAPI 2.0 binds the code to a DPoP key: the client's own, or one per push.
        key = self.dpop_key or ec.generate_private_key(ec.SECP256R1())
        form = self._authenticated(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": state,
                "scope": "reports:read",
                "authorization_details": orjson.dumps([ask.as_detail()]).decode(),
            }
        )
        proof = dpop_proof(key, "POST", f"{self.issuer}/oauth/par")
        answer = self.http.post("/oauth/par", data=form, headers={"DPoP": proof})
        if answer.status_code != 201:
            raise RefusedPush(answer)
        body = answer.json()
        query = urlencode({"client_id": self.client_id, "request_uri": body["request_uri"]})
        return Pushed(
            request_uri=body["request_uri"],
            expires_in=int(body["expires_in"]),
            authorize_url=f"{self.issuer}/oauth/authorize?{query}",
            redirect_uri=redirect_uri,
            state=state,
            code_verifier=verifier,
            dpop_key=key,
        )

    def callback(self, url: str, pushed: Pushed) -> str:
        """The code from the URL the browser came back to, once it is shown to be
        the gateway's answer to `pushed`: its `state`, and `iss` equal to this
        gateway's issuer (RFC 9207, against mix-up). AuthorizationDenied for an
        error (`access_denied`: the enterprise declined); RefusedCallback else."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items() if len(v) == 1}
        state = query.get("state", "")
        if not hmac.compare_digest(state.encode(), pushed.state.encode()):
            raise RefusedCallback("state is not the one pushed: not an answer to this request")
        if query.get("iss") != self.issuer:
            raise RefusedCallback(f"iss {query.get('iss')!r} is not this gateway ({self.issuer})")
        if "error" in query:
            raise AuthorizationDenied(query["error"], query.get("error_description"))
        if not query.get("code"):
            raise RefusedCallback("neither a code nor an error")
        return query["code"]

    def redeem(self, code: str, pushed: Pushed) -> ConsentGrant:
        """The code exchanged, with the verifier and a proof of the pushed request's
        DPoP key: the consent-bound tokens. RefusedToken if the gateway says no."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pushed.redirect_uri,
            "code_verifier": pushed.code_verifier,
        }
        body = self._token_call(form, pushed.dpop_key)
        [granted] = body["authorization_details"]
        return ConsentGrant(
            consent_id=granted["consent_id"],
            access_token=body["access_token"],
            expires_at=time.time() + body["expires_in"],
            refresh_token=body.get("refresh_token"),
            authorization_details=body["authorization_details"],
            dpop_key=pushed.dpop_key,
        )

    def refresh(self, grant: ConsentGrant) -> ConsentGrant:
        """New tokens for `grant`, in place: the refresh token is rotated (the old
        one is dead, and presenting it again revokes the whole grant). RefusedToken
        once the consent has ended or been revoked."""
        if grant.refresh_token is None:
            raise RefusedToken("this grant has no refresh token: its consent outlives no token")
        form = {"grant_type": "refresh_token", "refresh_token": grant.refresh_token}
        body = self._token_call(form, grant.dpop_key)
        grant.access_token = body["access_token"]
        grant.expires_at = time.time() + body["expires_in"]
        grant.refresh_token = body.get("refresh_token")
        return grant

    def _token_call(self, form: dict[str, str], key: jose.ClientPrivateKey) -> dict[str, Any]:
        proof = dpop_proof(key, "POST", f"{self.issuer}/oauth/token")
        answer = self.http.post(
            "/oauth/token", data=self._authenticated(form), headers={"DPoP": proof}
        )
        if answer.status_code != 200:
            raise RefusedToken(f"token request refused: {answer.status_code} {answer.text}")
        body: dict[str, Any] = answer.json()
        return body
