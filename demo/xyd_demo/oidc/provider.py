"""The demo OpenID Connect provider: authorisation code flow only, PKCE S256
required, ID tokens signed ES256.

Endpoints: `/.well-known/openid-configuration`, `/jwks`, `/authorize` (GET: the
request, checked, then the login form; POST: the form), `/token`, `/userinfo`.

Answers: before the client and its redirect URI are known good, an error page
(400) and never a redirect; after, errors go back to the redirect URI as
RFC 6749 4.1.2.1 says, with `iss` (RFC 9207). The token endpoint answers in the
OAuth error format. Everything is in memory and bounded: pending logins and
codes expire and are capped in number, forms and parameters are size-limited.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar
from urllib.parse import unquote_plus, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.identity.clients import secret_matches
from gateway.keys import jose
from xyd_demo.oidc.answers import NO_STORE, BadForm, bad_request, html, oauth_error, read_form
from xyd_demo.oidc.pages import error_page, login_page
from xyd_demo.oidc.registration import AUTH_METHODS, Client
from xyd_demo.oidc.users import People, Person, dummy_hash

CODE_SECONDS = 60
TOKEN_SECONDS = 300  # ID and access tokens alike
LOGIN_SECONDS = 600
MAX_PENDING = 10_000
MAX_ATTEMPTS = 5
MAX_PARAM_CHARS = 1024
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_WRONG_LOGIN = "用户名或密码不正确 · Wrong username or password"


class _Expiring(Protocol):
    @property
    def expires(self) -> float: ...


_V = TypeVar("_V", bound=_Expiring)


@dataclass(slots=True)
class Pending:
    """An authorisation request waiting for its login form."""

    client_id: str
    redirect_uri: str
    state: str
    nonce: str
    challenge: str
    scope: str
    csrf: str
    browser: str  # the cookie that ties the form to the browser that asked
    expires: float
    attempts: int = 0


@dataclass(slots=True)
class Grant:
    """A code's promise, or, once redeemed, the access tokens it gave."""

    pending: Pending
    person: Person
    expires: float
    issued: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Access:
    person: Person
    client_id: str
    expires: float


def _put(table: OrderedDict[str, _V], key: str, value: _V, now: float) -> None:
    """Insert, dropping what expired (entries are in expiry order) and the oldest
    beyond the cap."""
    while table:
        if next(iter(table.values())).expires > now and len(table) < MAX_PENDING:
            break
        table.popitem(last=False)
    table[key] = value


def _s256(verifier: str) -> str:
    return jose.b64encode(hashlib.sha256(verifier.encode("ascii")).digest())


def _with_params(uri: str, params: Mapping[str, str]) -> str:
    return uri + ("&" if urlsplit(uri).query else "?") + urlencode(params)


class Provider:
    """One provider: its issuer URL, signing key, registered clients and people."""

    def __init__(
        self,
        issuer: str,
        key: ec.EllipticCurvePrivateKey,
        clients: list[Client],
        people: People,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self._key = key
        self._jwk = {**jose.public_jwk(key), "use": "sig", "alg": "ES256"}
        self._kid = jose.thumbprint(self._jwk)
        self._jwk["kid"] = self._kid
        self._clients = {client.client_id: client for client in clients}
        self._people = people
        self._clock = clock
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._codes: OrderedDict[str, Grant] = OrderedDict()
        self._spent: OrderedDict[str, Grant] = OrderedDict()  # redeemed codes, until expiry
        self._tokens: OrderedDict[str, Access] = OrderedDict()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize, methods=["GET"]),
                Route("/authorize", self.login, methods=["POST"]),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo, methods=["GET", "POST"]),
            ]
        )

    # --- metadata ----------------------------------------------------------

    async def discovery(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "userinfo_endpoint": self.issuer + "/userinfo",
                "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "scopes_supported": ["openid"],
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time",
                                     "nonce", "credit_code", "xyd_role"],
                "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
            }
        )  # fmt: skip

    async def jwks(self, request: Request) -> JSONResponse:
        return JSONResponse({"keys": [self._jwk]})

    # --- authorisation -------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        pairs = request.query_params.multi_items()
        query = dict(pairs)
        if len(query) != len(pairs) or any(len(v) > MAX_PARAM_CHARS for v in query.values()):
            return bad_request("a parameter is repeated or too long")
        client = self._clients.get(query.get("client_id", ""))
        if client is None:
            return bad_request("unknown client_id")
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            return bad_request("redirect_uri is not one registered for this client")
        refused = _refusal(query)
        if refused is not None:
            return self._back(
                redirect_uri,
                {"error": refused[0], "error_description": refused[1]},
                query.get("state", ""),
            )
        now = self._clock()
        request_id = secrets.token_urlsafe(24)
        pending = Pending(
            client.client_id, redirect_uri, query["state"], query["nonce"],
            query["code_challenge"], query["scope"], secrets.token_urlsafe(24),
            secrets.token_urlsafe(24), now + LOGIN_SECONDS,
        )  # fmt: skip
        _put(self._pending, request_id, pending, now)
        answer = self._login_form(request_id, pending, None, 200)
        answer.set_cookie(
            _cookie(request_id), pending.browser, max_age=LOGIN_SECONDS,
            path="/authorize", httponly=True, samesite="strict",
        )  # fmt: skip
        return answer

    def _login_form(
        self, request_id: str, pending: Pending, error: str | None, status: int
    ) -> HTMLResponse:
        page = login_page(request_id, pending.csrf, pending.client_id, error)
        origin = urlsplit(pending.redirect_uri)
        return html(page, status, f"{origin.scheme}://{origin.netloc}")

    def _back(self, redirect_uri: str, params: dict[str, str], state: str) -> RedirectResponse:
        if state:
            params["state"] = state
        params["iss"] = self.issuer
        return RedirectResponse(_with_params(redirect_uri, params), 302, headers=NO_STORE)

    async def login(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except BadForm as exc:
            return bad_request(str(exc))
        request_id = form.get("request", "")
        pending = self._pending.get(request_id)
        if pending is None or pending.expires <= self._clock():
            detail = "this login has expired or is unknown: start again from the gateway"
            return html(error_page("登录已过期 · Login expired", detail), 400)
        if not (
            _same(form.get("csrf"), pending.csrf)
            and _same(request.cookies.get(_cookie(request_id)), pending.browser)
        ):
            detail = "the form was not the one this browser was given"
            return html(error_page("请求被拒绝 · Refused", detail), 403)
        pending.attempts += 1  # counted before the check: concurrent guesses count too
        if pending.attempts > MAX_ATTEMPTS:
            self._pending.pop(request_id, None)
            detail = "too many wrong passwords: start again from the gateway"
            return html(error_page("请求被拒绝 · Refused", detail), 403)
        username, password = form.get("username", ""), form.get("password", "")
        person = None
        if len(username) <= 64 and len(password) <= 1024:
            person = await asyncio.to_thread(self._people.check, username, password)
        if person is None:
            return self._login_form(request_id, pending, _WRONG_LOGIN, 400)
        if self._pending.pop(request_id, None) is None:  # a concurrent login took it
            return html(
                error_page("登录已过期 · Login expired", "start again from the gateway"), 400
            )
        now = self._clock()
        code = secrets.token_urlsafe(32)
        _put(self._codes, code, Grant(pending, person, now + CODE_SECONDS), now)
        answer = self._back(pending.redirect_uri, {"code": code}, pending.state)
        answer.delete_cookie(_cookie(request_id), path="/authorize")
        return answer

    # --- token and userinfo ----------------------------------------------------

    async def token(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except BadForm as exc:
            return oauth_error("invalid_request", str(exc))
        client = await self._client(request, form)
        if not isinstance(client, Client):
            return client
        if form.get("grant_type") != "authorization_code":
            return oauth_error("unsupported_grant_type", "authorization_code only")
        code = form.get("code", "")
        grant = self._codes.pop(code, None)  # single use, whatever happens next
        now = self._clock()
        if grant is None:
            spent = self._spent.pop(code, None)
            for token in spent.issued if spent else []:
                self._tokens.pop(token, None)  # a code replayed: what it gave is revoked
            return oauth_error("invalid_grant", "unknown, expired or used code")
        pending = grant.pending
        if grant.expires <= now or pending.client_id != client.client_id:
            return oauth_error("invalid_grant", "unknown, expired or used code")
        if form.get("redirect_uri") != pending.redirect_uri:
            return oauth_error(
                "invalid_grant", "redirect_uri differs from the authorisation request's"
            )
        verifier = form.get("code_verifier", "")
        if not _VERIFIER.fullmatch(verifier) or not _same(_s256(verifier), pending.challenge):
            return oauth_error("invalid_grant", "code_verifier does not match the code_challenge")
        return self._issue(grant, code, now)

    def _issue(self, grant: Grant, code: str, now: float) -> JSONResponse:
        access = secrets.token_urlsafe(32)
        person, pending = grant.person, grant.pending
        _put(self._tokens, access, Access(person, pending.client_id, now + TOKEN_SECONDS), now)
        grant.issued.append(access)
        grant.expires = now + TOKEN_SECONDS  # kept as spent while what it gave lives
        _put(self._spent, code, grant, now)
        digest = hashlib.sha256(access.encode("ascii")).digest()
        claims = {
            "iss": self.issuer,
            "sub": person.subject,
            "aud": pending.client_id,
            "iat": int(now),
            "exp": int(now) + TOKEN_SECONDS,
            "auth_time": int(now),
            "nonce": pending.nonce,
            "at_hash": jose.b64encode(digest[:16]),
            "credit_code": person.credit_code,
            "xyd_role": person.role,
        }
        header = {"alg": "ES256", "typ": "JWT", "kid": self._kid}
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "scope": pending.scope,
            "id_token": jose.sign(header, claims, self._key),
        }
        return JSONResponse(body, headers=NO_STORE)

    async def _client(self, request: Request, form: dict[str, str]) -> Client | JSONResponse:
        """The authenticated client (client_secret_basic or _post, one of them),
        or the refusal to answer with."""
        header = request.headers.get("authorization", "")
        basic = header[:6].lower() == "basic "
        if basic and "client_secret" in form:
            return oauth_error("invalid_request", "use one client authentication method")
        if basic:
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)  # RFC 6749 2.3.1
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if form.get("client_id", client_id) != client_id:
            return oauth_error("invalid_request", "client_id differs from the authenticated one")
        client = self._clients.get(client_id)
        stored = client.secret_hash if client else dummy_hash()
        matched = (
            secret
            and len(secret) <= 256
            and await asyncio.to_thread(secret_matches, stored, secret)
        )
        if client is None or not matched:
            refusal = oauth_error("invalid_client", "client authentication failed", 401)
            if basic:
                refusal.headers["WWW-Authenticate"] = 'Basic realm="token"'
            return refusal
        return client

    async def userinfo(self, request: Request) -> JSONResponse:
        header = request.headers.get("authorization", "")
        access = self._tokens.get(header[7:].strip()) if header[:7].lower() == "bearer " else None
        if access is None or access.expires <= self._clock():
            return JSONResponse(
                {"error": "invalid_token"}, status_code=401,
                headers={**NO_STORE, "WWW-Authenticate": 'Bearer error="invalid_token"'},
            )  # fmt: skip
        person = access.person
        body = {"sub": person.subject, "credit_code": person.credit_code, "xyd_role": person.role}
        return JSONResponse(body, headers=NO_STORE)


def _refusal(query: Mapping[str, str]) -> tuple[str, str] | None:
    """Why an authorisation request from a known client and redirect URI is
    refused (an OAuth error and its description), or None."""
    if query.get("response_type") != "code":
        return "unsupported_response_type", "response_type must be code"
    if "openid" not in query.get("scope", "").split():
        return "invalid_scope", "scope must include openid"
    if not query.get("state"):
        return "invalid_request", "state is required"
    if not query.get("nonce"):
        return "invalid_request", "nonce is required"
    if query.get("code_challenge_method") != "S256":
        return "invalid_request", "PKCE with code_challenge_method S256 is required"
    if not _CHALLENGE.fullmatch(query.get("code_challenge", "")):
        return "invalid_request", "code_challenge must be a base64url SHA-256"
    return None


def _cookie(request_id: str) -> str:
    return "xyd_idp_" + request_id


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
