"""The authorisation code flow's operations, callable without HTTP.

`push` takes a bank's pushed request (RFC 9126); `approve` / `decline` are
what the consent page calls once the enterprise's person has decided;
`exchange` and `refresh` are the token endpoint's `authorization_code` and
`refresh_token` grants (registered on `Identity.grants`). Request URIs,
codes and refresh tokens are random, handed out once and kept only as their
SHA-256; each is spent once, and a second use of a code or of a rotated
refresh token revokes what the first one issued.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import Connection, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.access.gate import Gate
from gateway.audit.chain import AuditEvent
from gateway.audit.service import AuditWriter, digest, record_in
from gateway.consents import service as consents
from gateway.consents.principal import PORTAL, PortalPrincipal
from gateway.errors import Forbidden, InvalidValue, NotFound, RateLimited
from gateway.grants import repository
from gateway.grants.details import InvalidDetails, as_terms, parse_details
from gateway.grants.pkce import valid_challenge, verifier_matches
from gateway.identity.clients import Client
from gateway.identity.errors import InvalidRequest
from gateway.identity.service import Identity
from gateway.identity.tokens import new_jti
from gateway.settings import Settings
from policies.consent import ConsentRules

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
SCOPE = "reports:read"
# Bounds on what a form may carry; longer is refused before anything is looked up.
_LIMITS = {
    "client_id": 64,
    "redirect_uri": 512,
    "state": 512,
    "scope": 200,
    "code_challenge": 128,
    "code_challenge_method": 10,
    "response_type": 20,
    "code": 128,
    "code_verifier": 128,
    "refresh_token": 128,
}
# Parameters a pushed request may not carry: request objects are not taken (no
# JAR) and a request_uri is what PAR answers, never what it is given (RFC 9126 §2.1).
_REFUSED = ("request", "request_uri")
# Where the enterprise's decision is made, as its audit entries name it.
AUTHORIZE_ROUTE = "/oauth/authorize"
# The push's key in config/rates.yaml's routes, as the gate charges it.
PAR_ROUTE = "POST /oauth/par"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _bounded(form: dict[str, str], name: str, *, required: bool = True) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"{name} is required")
        return None
    if len(value) > _LIMITS[name]:
        raise InvalidRequest(f"{name}: at most {_LIMITS[name]} characters")
    return value


def _required(form: dict[str, str], name: str) -> str:
    value = _bounded(form, name)
    assert value is not None
    return value


def invalid_grant(detail: str) -> InvalidRequest:
    return InvalidRequest(detail, error="invalid_grant")


class UnknownRequest(InvalidRequest):
    """An approval for a request_uri that is unknown, another client's, used or expired."""

    type_slug, title = "invalid-request-uri", "Unknown, used or expired request_uri"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, error="invalid_request_uri")


class OtherEnterprise(Forbidden):
    type_slug, title = "other-enterprise", "Not a person of this enterprise"


class PushRefused(RateLimited):
    """A client pushing faster than its rate plan allows: 429, Retry-After, and
    `error` as every other answer of the OAuth endpoints carries it."""

    type_slug, title = "par-rate-limited", "Too many pushed authorisation requests"

    def __init__(self, refused: RateLimited) -> None:
        super().__init__(
            refused.detail,
            retry_after_s=int(refused.headers["Retry-After"]),
            extra_headers=refused.headers,
            error="temporarily_unavailable",
            error_description=refused.detail,
            **refused.extensions,
        )


@dataclass
class CodeFlow:
    settings: Settings
    engine: AsyncEngine
    identity: Identity
    rules: ConsentRules
    audit: AuditWriter
    gate: Gate

    def register(self) -> None:
        """Serve the flow's grants at the token endpoint, and so in the metadata;
        not where the portal channel is refused (every code would be refused too)."""
        if not self.rules.accepts(PORTAL):
            return
        self.identity.grants["authorization_code"] = self.exchange
        self.identity.grants["refresh_token"] = self.refresh

    # --- the pushed request ---------------------------------------------------

    async def push(
        self, form: dict[str, str], dpop_jkt: str | None, authorization: str | None
    ) -> dict[str, Any]:
        """Take a bank's pushed authorisation request: 201's body, or an OAuth error."""
        for name in _REFUSED:
            if name in form:
                raise InvalidRequest(f"{name} is not accepted here")
        for name in _LIMITS:
            if name in form:
                _bounded(form, name, required=False)
        if "client_id" not in form:
            raise InvalidRequest("client_id is required")
        client = await self.identity.authenticate(form, authorization)
        if form["client_id"] != client.client_id:  # Basic credentials name no form client_id
            raise InvalidRequest(
                "client_id is not the authenticated client", error="invalid_client"
            )
        await self._charge(client)
        if not self.rules.accepts(PORTAL):
            # Every code the flow issues would become a portal consent the
            # approval then refuses: say so now, before the enterprise is asked.
            raise InvalidRequest(
                "channel portal: this gateway does not accept consents granted by the "
                "enterprise (XYD_CONSENT_CHANNELS), so it issues no authorisation codes",
                error="unauthorized_client",
            )
        self.identity.require_dpop(client, dpop_jkt)
        if form.get("response_type") != "code":
            raise InvalidRequest("response_type must be code", error="unsupported_response_type")
        if client.client_type != "bank" or SCOPE not in client.scopes:
            raise InvalidRequest(
                f"only a bank holding {SCOPE} asks for reports", error="unauthorized_client"
            )
        if form.get("scope", SCOPE).split() != [SCOPE]:
            raise InvalidRequest(f"scope must be {SCOPE}", error="invalid_scope")
        redirect_uri = _required(form, "redirect_uri")
        if redirect_uri not in client.redirect_uris:
            raise InvalidRequest("redirect_uri is not one registered for this client")
        if form.get("code_challenge_method") != "S256":
            raise InvalidRequest("code_challenge_method must be S256 (plain is refused)")
        challenge = _required(form, "code_challenge")
        if not valid_challenge(challenge):
            raise InvalidRequest("code_challenge: the base64url SHA-256 of the verifier")
        if "authorization_details" not in form:
            raise InvalidDetails("authorization_details is required")
        details = parse_details(form["authorization_details"])
        async with self.engine.begin() as conn:
            await conn.run_sync(self._check_details, client, details)
            request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
            now = datetime.now(UTC)
            await conn.run_sync(
                repository.insert_request,
                {
                    "request_hash": _hash(request_uri),
                    "client_id": client.client_id,
                    "redirect_uri": redirect_uri,
                    "code_challenge": challenge,
                    "state": _bounded(form, "state", required=False),
                    "scope": SCOPE,
                    "authorization_details": details,
                    "dpop_jkt": dpop_jkt,
                    "expires_at": now + timedelta(seconds=self.settings.par_expires_in_s),
                    "created_at": now,
                },
            )
        return {"request_uri": request_uri, "expires_in": self.settings.par_expires_in_s}

    async def _charge(self, client: Client) -> None:
        """The client's rate plan charged for the push (the gate's one Redis trip);
        a refusal in the OAuth error form, 429 with Retry-After (RFC 9126 §2.3)."""
        try:
            await self.gate.admit_client(client, PAR_ROUTE)
        except RateLimited as refused:
            raise PushRefused(refused) from None

    def _check_details(self, conn: Connection, client: Client, details: dict[str, Any]) -> None:
        """The checks `POST /v1/consents` makes, so a request that could never
        become a consent is refused now, not after the enterprise approved it."""
        body = as_terms(details, client.client_id)
        try:
            consents.check(conn, client, body, self.rules, datetime.now(UTC))
        except (InvalidValue, NotFound) as refused:
            raise InvalidDetails(f"authorization_details: {refused.detail}") from None

    # --- the enterprise's decision --------------------------------------------

    async def pending(
        self, request_uri: str, client_id: str, person: PortalPrincipal
    ) -> dict[str, Any]:
        """What a live request asks of this person's enterprise (for the consent page
        to show): client_id, redirect_uri, authorization_details; UnknownRequest or
        OtherEnterprise otherwise."""
        async with self.engine.connect() as conn:
            row = await conn.run_sync(self._request_for, request_uri, client_id, person)
        return {
            "client_id": row.client_id,
            "redirect_uri": row.redirect_uri,
            "authorization_details": [dict(row.authorization_details)],
        }

    def _live_request(self, conn: Connection, request_uri: str, client_id: str) -> Row[Any]:
        if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > 200:
            raise UnknownRequest("not a request_uri this server gave out")
        row = repository.request_row(conn, _hash(request_uri))
        if row is None or row.client_id != client_id:
            raise UnknownRequest("unknown request_uri")
        if row.used_at is not None:
            raise UnknownRequest("request_uri already used")
        if row.expires_at <= datetime.now(UTC):
            raise UnknownRequest("request_uri expired")
        return row

    def _request_for(
        self, conn: Connection, request_uri: str, client_id: str, person: PortalPrincipal
    ) -> Row[Any]:
        """The live request, if it is about the enterprise the person's login names:
        the one place a person is held to their own enterprise."""
        row = self._live_request(conn, request_uri, client_id)
        if row.authorization_details["credit_code"] != person.credit_code:
            raise OtherEnterprise("this request is for another enterprise than your login names")
        return row

    def _spend(
        self, conn: Connection, request_uri: str, client_id: str, person: PortalPrincipal
    ) -> Row[Any]:
        row = self._request_for(conn, request_uri, client_id, person)
        if not repository.spend_request(conn, row.request_hash, datetime.now(UTC)):
            raise UnknownRequest("request_uri already used")
        return row

    async def approve(
        self,
        request_uri: str,
        client_id: str,
        person: PortalPrincipal,
        *,
        shown_sha256: str | None = None,
    ) -> str:
        """The enterprise approved: the consent created (channel portal, the person
        as evidence) and a code issued, audited in the same transaction; the
        redirect URL to send the browser to. `shown_sha256` is the hash of the
        terms the person read (default: of the request's details)."""
        client = await self.identity.client(client_id)
        if client is None or client.disabled:
            raise UnknownRequest("unknown client")
        code = secrets.token_urlsafe(32)
        async with self.engine.begin() as conn:
            row = await conn.run_sync(self._spend, request_uri, client_id, person)
            details = dict(row.authorization_details)
            shown = shown_sha256 or hashlib.sha256(orjson.dumps(details)).hexdigest()
            now = datetime.now(UTC)
            try:
                consent = await conn.run_sync(
                    consents.create_from_portal,
                    person,
                    as_terms(details, client_id),
                    approved_at=now,
                    page_sha256=shown,
                    rules=self.rules,
                )
            except (InvalidValue, NotFound) as refused:
                raise InvalidDetails(f"authorization_details: {refused.detail}") from None
            await conn.run_sync(
                repository.insert_code,
                {
                    "code_hash": _hash(code),
                    "request_hash": row.request_hash,
                    "client_id": client_id,
                    "redirect_uri": row.redirect_uri,
                    "code_challenge": row.code_challenge,
                    "scope": row.scope,
                    "authorization_details": details,
                    "dpop_jkt": row.dpop_jkt,
                    "principal": person.subject_hash,
                    "consent_id": consent["id"],
                    "expires_at": now + timedelta(seconds=self.settings.authorization_code_ttl_s),
                    "created_at": now,
                },
            )
            entry = AuditEvent(
                client_id=client_id,
                route=AUTHORIZE_ROUTE,
                decision="allow",
                reason="consent granted by the enterprise (portal)",
                credit_code=consent["credit_code"],
                consent_id=consent["id"],
                purpose=consent["purpose"],
                response_sha256=digest(orjson.dumps(consent)),
            )
            await record_in(self.audit, conn, entry)  # last: it holds the chain's head
        return self._redirect(row.redirect_uri, {"code": code}, row.state)

    async def decline(self, request_uri: str, client_id: str, person: PortalPrincipal) -> str:
        """The enterprise declined: the request spent; the redirect URL saying so."""
        async with self.engine.begin() as conn:
            row = await conn.run_sync(self._spend, request_uri, client_id, person)
            details = row.authorization_details
            entry = AuditEvent(
                client_id=client_id,
                route=AUTHORIZE_ROUTE,
                decision="deny",
                reason="access_denied: declined by the enterprise (portal)",
                credit_code=details["credit_code"],
                purpose=details["purpose"],
            )
            await record_in(self.audit, conn, entry)
        return self._redirect(row.redirect_uri, {"error": "access_denied"}, row.state)

    def _redirect(self, redirect_uri: str, params: dict[str, str], state: str | None) -> str:
        if state is not None:
            params["state"] = state
        params["iss"] = self.settings.issuer  # RFC 9207: against mix-up attacks
        joiner = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{joiner}{urlencode(params)}"

    # --- the token endpoint's grants -------------------------------------------

    async def exchange(
        self, client: Client, form: dict[str, str], dpop_jkt: str | None
    ) -> dict[str, Any]:
        """`grant_type=authorization_code`: the code spent, PKCE and bindings checked."""
        code = _required(form, "code")
        redirect_uri = _required(form, "redirect_uri")
        verifier = _required(form, "code_verifier")
        now = datetime.now(UTC)
        jti, family = new_jti(), secrets.token_urlsafe(18)
        access_expires = now + timedelta(seconds=self.settings.access_token_ttl_s)
        issues = {"access_jti": jti, "access_expires_at": access_expires, "refresh_family": family}
        async with self.engine.begin() as conn:
            row = await conn.run_sync(repository.code_row, _hash(code))
            if row is None:
                raise invalid_grant("unknown code")
            spent = await conn.run_sync(repository.spend_code, row.code_hash, now, issues)
            if not spent:
                # Read again: a concurrent first use may have spent it since.
                used = await conn.run_sync(repository.code_row, row.code_hash)
                assert used is not None
                revoked = await self._revoke_what_was_issued(conn, used, now)
        if not spent:
            for revoked_jti, expires in revoked:
                await self.identity.guard.revoke(revoked_jti, row.client_id, expires)
            raise invalid_grant("code already used; what it issued is revoked")
        # Spent before these checks: a code presented wrongly is dead, never retried.
        if row.client_id != client.client_id:
            raise invalid_grant("the code was issued to another client")
        if row.expires_at <= now:
            raise invalid_grant("code expired")
        if redirect_uri != row.redirect_uri:
            raise invalid_grant("redirect_uri differs from the authorisation request's")
        if not verifier_matches(verifier, row.code_challenge):
            raise invalid_grant("code_verifier does not match the code_challenge")
        if row.dpop_jkt is not None and dpop_jkt != row.dpop_jkt:
            raise invalid_grant("the request was bound to another DPoP key")
        jkt = row.dpop_jkt or dpop_jkt
        details = dict(row.authorization_details)
        answer = await self._issue(client, row.consent_id, jkt, jti)
        answer["authorization_details"] = [{**details, "consent_id": row.consent_id}]
        until = datetime.fromisoformat(details["valid_until"])
        if until > access_expires:
            answer["refresh_token"] = await self._new_refresh(
                client.client_id, row.consent_id, details, jkt, family, jti, access_expires, until
            )
        return answer

    async def _revoke_what_was_issued(
        self, conn: AsyncConnection, row: Row[Any], now: datetime
    ) -> list[tuple[str, datetime]]:
        revoked: list[tuple[str, datetime]] = []
        if row.access_jti is not None and row.access_expires_at > now:
            revoked.append((row.access_jti, row.access_expires_at))
        if row.refresh_family is not None:
            revoked += await conn.run_sync(repository.revoke_family, row.refresh_family, now)
        return revoked

    async def refresh(
        self, client: Client, form: dict[str, str], dpop_jkt: str | None
    ) -> dict[str, Any]:
        """`grant_type=refresh_token`: rotated; a rotated one used again revokes
        its family; dead once the consent has ended or been revoked."""
        token = _required(form, "refresh_token")
        now = datetime.now(UTC)
        async with self.engine.connect() as conn:
            row = await conn.run_sync(repository.refresh_row, _hash(token))
        if row is None or row.client_id != client.client_id or row.revoked_at is not None:
            raise invalid_grant("unknown or revoked refresh token")
        if row.used_at is not None:
            await self._revoke_family(row.family, row.client_id, now)
            raise invalid_grant("refresh token already used; its family is revoked")
        if row.dpop_jkt is not None and dpop_jkt != row.dpop_jkt:
            raise invalid_grant("the refresh token is bound to another DPoP key")
        if row.expires_at <= now or not await self._consent_active(client, row.consent_id):
            await self._revoke_family(row.family, row.client_id, now)
            raise invalid_grant("the consent has ended or was revoked")
        async with self.engine.begin() as conn:
            rotated = await conn.run_sync(repository.spend_refresh, row.token_hash, now)
        if not rotated:
            await self._revoke_family(row.family, row.client_id, now)
            raise invalid_grant("refresh token already used; its family is revoked")
        jti = new_jti()
        access_expires = now + timedelta(seconds=self.settings.access_token_ttl_s)
        answer = await self._issue(client, row.consent_id, row.dpop_jkt, jti)
        details = dict(row.authorization_details)
        answer["authorization_details"] = [{**details, "consent_id": row.consent_id}]
        answer["refresh_token"] = await self._new_refresh(
            client.client_id, row.consent_id, details, row.dpop_jkt, row.family, jti,
            access_expires, row.expires_at,
        )  # fmt: skip
        return answer

    async def _consent_active(self, client: Client, consent_id: str) -> bool:
        async with self.engine.connect() as conn:
            try:
                consent = await conn.run_sync(consents.get, client, consent_id)
            except NotFound:
                return False
        return bool(consent["status"] == "active")

    async def _revoke_family(self, family: str, client_id: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            revoked = await conn.run_sync(repository.revoke_family, family, now)
        for jti, expires in revoked:
            await self.identity.guard.revoke(jti, client_id, expires)

    async def _issue(
        self, client: Client, consent_id: str, jkt: str | None, jti: str
    ) -> dict[str, Any]:
        token, ttl = await self.identity.tokens.issue(
            client, frozenset({SCOPE}), jkt, consent_id=consent_id, jti=jti
        )
        return {
            "access_token": token,
            "token_type": "DPoP" if jkt else "Bearer",
            "expires_in": ttl,
            "scope": SCOPE,
        }

    async def _new_refresh(
        self,
        client_id: str,
        consent_id: str,
        details: dict[str, Any],
        jkt: str | None,
        family: str,
        access_jti: str,
        access_expires: datetime,
        until: datetime,
    ) -> str:
        token = secrets.token_urlsafe(32)
        async with self.engine.begin() as conn:
            await conn.run_sync(
                repository.insert_refresh,
                {
                    "token_hash": _hash(token),
                    "family": family,
                    "client_id": client_id,
                    "consent_id": consent_id,
                    "scope": SCOPE,
                    "authorization_details": details,
                    "dpop_jkt": jkt,
                    "access_jti": access_jti,
                    "access_expires_at": access_expires,
                    "expires_at": until,
                    "created_at": datetime.now(UTC),
                },
            )
        return token
