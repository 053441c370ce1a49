"""The gateway as an OpenID Connect relying party of the enterprises' provider.

`RelyingParty.authorization_url` builds the code-flow request (PKCE S256, state,
nonce; Authlib's request builders), `exchange` redeems the code at the token
endpoint (client_secret_basic) and `verify_id_token` checks what came back:
signature against the provider's JWKS (keys/jose.py, algorithms from
`XYD_ENTERPRISE_OIDC_ALGS`), `iss`, `aud` (and `azp`), `exp`, `iat`, `nonce`,
then the person's enterprise and role from the configured claims.

Every call to the provider (discovery, JWKS, token) goes through the outbound
policy (gateway/outbound.py). Errors: `ProviderUnavailable` (503) when the
provider is not configured or cannot be reached or answers nonsense;
`LoginRefused` (403) for a code or ID token that is not accepted.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from gateway.errors import DependencyUnavailable, Forbidden, ProblemError
from gateway.identifiers import checked_code
from gateway.keys import jose
from gateway.outbound import OutboundPolicy, OutboundRefused
from gateway.settings import Settings

log = logging.getLogger("xyd.portal")
ROLES = ("legal_representative", "agent")
METADATA_TTL_S = 300.0
JWKS_REFETCH_S = 30.0  # an unknown kid fetches the JWKS again, at most this often
MAX_ANSWER_BYTES = 64 * 1024
MAX_SUBJECT_CHARS = 255
IAT_MAX_AGE_S = 600


class ProviderUnavailable(DependencyUnavailable):
    type_slug, title = "enterprise-login-unavailable", "The enterprise login is unavailable"


class LoginRefused(Forbidden):
    type_slug, title = "enterprise-login-refused", "The enterprise login was not accepted"


@dataclass(frozen=True, slots=True)
class Registration:
    """Where the provider is and who the gateway is there."""

    issuer: str
    client_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class Metadata:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True, slots=True)
class Identity:
    """What an accepted ID token says of the person."""

    subject: str
    credit_code: str
    role: str


def _file_registration(settings: Settings) -> dict[str, Any]:
    path = settings.enterprise_oidc_client_path
    try:
        text = path.read_text(encoding="utf-8")[:MAX_ANSWER_BYTES]
        found = json.loads(text)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise ProviderUnavailable(
            f"the enterprise login's client file {path} is unreadable"
        ) from None
    return found if isinstance(found, dict) else {}


def registration(settings: Settings, policy: OutboundPolicy) -> Registration:
    """The settings, completed from the client file; ProviderUnavailable if incomplete."""
    found = _file_registration(settings)
    issuer = settings.enterprise_oidc_issuer or found.get("issuer") or ""
    client_id = settings.enterprise_oidc_client_id or found.get("client_id") or ""
    secret_file = settings.enterprise_oidc_client_secret_file
    try:
        secret = (
            secret_file.read_text(encoding="utf-8").strip()
            if secret_file is not None
            else found.get("client_secret") or ""
        )
    except OSError:
        raise ProviderUnavailable(
            "the enterprise login's client secret file is unreadable"
        ) from None
    if not all(isinstance(v, str) and v for v in (issuer, client_id, secret)):
        raise ProviderUnavailable("the enterprise login is not configured (XYD_ENTERPRISE_OIDC_*)")
    try:
        policy.check_config("XYD_ENTERPRISE_OIDC_ISSUER", issuer)
    except ValueError as exc:
        raise ProviderUnavailable(str(exc)) from None
    return Registration(issuer.rstrip("/"), client_id, secret)


def s256(verifier: str) -> str:
    return str(create_s256_code_challenge(verifier))


@dataclass
class RelyingParty:
    settings: Settings
    policy: OutboundPolicy
    http: httpx.AsyncClient
    _metadata: dict[str, tuple[float, Metadata]] = field(default_factory=dict)
    _keys: dict[str, tuple[float, dict[str, jose.PublicKey]]] = field(default_factory=dict)

    @classmethod
    def configured(cls, settings: Settings) -> RelyingParty:
        policy = OutboundPolicy.of(settings.outbound_allowed_hosts)
        client = httpx.AsyncClient(
            transport=policy.transport(), timeout=5.0, follow_redirects=False
        )
        return cls(settings, policy, client)

    async def close(self) -> None:
        await self.http.aclose()

    def registration(self) -> Registration:
        return registration(self.settings, self.policy)

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            answer = await self.http.get(url, headers={"Accept": "application/json"})
        except (httpx.HTTPError, OutboundRefused) as exc:
            raise _unreachable(exc) from None
        return _json_of(answer)

    async def metadata(self, reg: Registration) -> Metadata:
        cached = self._metadata.get(reg.issuer)
        if cached is not None and time.monotonic() - cached[0] < METADATA_TTL_S:
            return cached[1]
        doc = await self._get_json(reg.issuer + "/.well-known/openid-configuration")
        if doc.get("issuer") != reg.issuer:  # OpenID Connect Discovery 4.3
            raise ProviderUnavailable("the provider's discovery names another issuer")
        urls = [doc.get(name) for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")]
        for url in urls:
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise ProviderUnavailable("the provider's discovery lacks an endpoint")
            try:
                self.policy.check_config("an identity provider endpoint", url)
            except ValueError as exc:
                raise ProviderUnavailable(str(exc)) from None
        found = Metadata(*[str(url) for url in urls])
        self._metadata[reg.issuer] = (time.monotonic(), found)
        return found

    async def authorization_url(
        self, reg: Registration, redirect_uri: str, state: str, nonce: str, verifier: str
    ) -> str:
        meta = await self.metadata(reg)
        uri: str = prepare_grant_uri(
            meta.authorization_endpoint, reg.client_id, "code", redirect_uri=redirect_uri,
            scope="openid", state=state, nonce=nonce, code_challenge=s256(verifier),
            code_challenge_method="S256",
        )  # fmt: skip
        return uri

    async def exchange(self, reg: Registration, code: str, redirect_uri: str, verifier: str) -> str:
        """The ID token the provider gives for this code."""
        meta = await self.metadata(reg)
        body = prepare_token_request(
            "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=verifier
        )
        try:
            answer = await self.http.post(
                meta.token_endpoint,
                content=body,
                auth=(reg.client_id, reg.client_secret),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
            )
        except (httpx.HTTPError, OutboundRefused) as exc:
            raise _unreachable(exc) from None
        if answer.status_code in (400, 401):
            raise LoginRefused("the identity provider did not accept the code; log in again")
        token = _json_of(answer).get("id_token")
        if not isinstance(token, str):
            raise ProviderUnavailable("the identity provider answered no id_token")
        return token

    async def _key(self, reg: Registration, kid: str | None) -> jose.PublicKey:
        meta = await self.metadata(reg)
        cached = self._keys.get(reg.issuer)
        now = time.monotonic()
        stale = cached is None or (
            (kid is None or kid not in cached[1]) and now - cached[0] >= JWKS_REFETCH_S
        )
        if stale:
            keys = _keys_of(await self._get_json(meta.jwks_uri))
            cached = (now, keys)
            self._keys[reg.issuer] = cached
        assert cached is not None
        keys = cached[1]
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        found = keys.get(kid or "")
        if found is None:
            raise LoginRefused("the ID token's key is not one the provider publishes")
        return found

    async def verify_id_token(
        self, reg: Registration, token: str, nonce: str, now: float | None = None
    ) -> Identity:
        """The person, or LoginRefused naming what is wrong with the token."""
        try:
            compact = jose.parse(token)
        except jose.JoseError as exc:
            raise LoginRefused(f"ID token: {exc}") from None
        kid = compact.header.get("kid")
        key = await self._key(reg, kid if isinstance(kid, str) else None)
        try:
            jose.verify(compact, key, frozenset(self.settings.enterprise_oidc_algs))
        except jose.JoseError as exc:
            raise LoginRefused(f"ID token: {exc}") from None
        return self._claims(reg, compact.claims, nonce, time.time() if now is None else now)

    def _claims(
        self, reg: Registration, claims: dict[str, Any], nonce: str, now: float
    ) -> Identity:
        leeway = self.settings.clock_leeway_s
        if claims.get("iss") != reg.issuer:
            raise LoginRefused("ID token: iss is not the configured provider")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if reg.client_id not in audiences:
            raise LoginRefused("ID token: aud is not this gateway")
        if len(audiences) > 1 and claims.get("azp") != reg.client_id:
            raise LoginRefused("ID token: several audiences and azp is not this gateway")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or exp + leeway <= now:
            raise LoginRefused("ID token: expired")
        if not isinstance(iat, int | float) or not now - IAT_MAX_AGE_S <= iat <= now + leeway:
            raise LoginRefused("ID token: iat is not recent")
        given = claims.get("nonce")
        if not isinstance(given, str) or not _same(given, nonce):
            raise LoginRefused("ID token: nonce is not this login's")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
            raise LoginRefused("ID token: no usable sub")
        return Identity(subject, *self._enterprise(claims))

    def _enterprise(self, claims: dict[str, Any]) -> tuple[str, str]:
        code = claims.get(self.settings.enterprise_credit_code_claim)
        role = claims.get(self.settings.enterprise_role_claim)
        if not isinstance(code, str) or len(code) > 40:
            raise LoginRefused("your login names no enterprise (credit code)")
        try:
            checked = checked_code(code)
        except ProblemError as exc:
            raise LoginRefused(f"your login's enterprise: {exc.detail}") from None
        if role not in ROLES:
            raise LoginRefused("your login's role is neither legal_representative nor agent")
        return checked, str(role)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _unreachable(exc: Exception) -> ProviderUnavailable:
    # The cause (addresses, the allow-list's refusal) goes to the log, not to the page.
    log.warning("enterprise identity provider unreachable: %s", exc)
    return ProviderUnavailable("the identity provider cannot be reached; try again later")


def _json_of(answer: httpx.Response) -> dict[str, Any]:
    if answer.status_code != 200 or len(answer.content) > MAX_ANSWER_BYTES:
        raise ProviderUnavailable(f"the identity provider answered {answer.status_code}")
    try:
        found = answer.json()
    except ValueError:
        raise ProviderUnavailable("the identity provider answered no JSON") from None
    if not isinstance(found, dict):
        raise ProviderUnavailable("the identity provider answered no JSON object")
    return found


def _keys_of(jwks: dict[str, Any]) -> dict[str, jose.PublicKey]:
    keys: dict[str, jose.PublicKey] = {}
    for jwk in jwks.get("keys", []) if isinstance(jwks.get("keys"), list) else []:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        try:
            keys[str(jwk.get("kid", ""))] = jose.public_key_from_jwk(jwk)
        except jose.JoseError:
            continue  # a key type we do not take is skipped, not fatal
    return keys
