"""The authorisation server's operations, callable without HTTP."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.identity.assertions import (
    ASSERTION_ALGS,
    ASSERTION_TYPE,
    authenticate_client,
    unverified_client_id,
)
from gateway.identity.clients import SCOPES, Client, get_client, secret_matches
from gateway.identity.errors import InvalidClient, InvalidRequest, InvalidToken
from gateway.identity.guard import TokenGuard
from gateway.identity.tokens import AccessTokens, Caller
from gateway.keys.ring import KeyRingHolder
from gateway.settings import Settings


class Grant(Protocol):
    """A grant type served above this layer (the code flow needs consents):
    called with the client already authenticated and its DPoP key, if any."""

    async def __call__(
        self, client: Client, form: dict[str, str], dpop_jkt: str | None
    ) -> dict[str, Any]: ...


@dataclass
class Identity:
    """What the app holds for identity, made in the lifespan."""

    settings: Settings
    engine: AsyncEngine
    keys: KeyRingHolder
    guard: TokenGuard
    tokens: AccessTokens
    # grant_type → its handler, for the grants app.py wires in (authorization_code,
    # refresh_token); client_credentials is served here.
    grants: dict[str, Grant] = field(default_factory=dict)

    async def client(self, client_id: str) -> Client | None:
        async with self.engine.connect() as conn:
            return await conn.run_sync(get_client, client_id)

    async def authenticate(self, form: dict[str, str], authorization: str | None = None) -> Client:
        if authorization and authorization.lower().startswith("basic "):
            return await self._basic(authorization, form)
        if form.get("client_assertion_type") != ASSERTION_TYPE or "client_assertion" not in form:
            raise InvalidRequest(
                "client authentication by private_key_jwt is required "
                f"(client_assertion_type={ASSERTION_TYPE})",
                error="invalid_client",
            )
        assertion = form["client_assertion"]
        client_id = unverified_client_id(assertion)
        if "client_id" in form and form["client_id"] != client_id:
            raise InvalidRequest("client_id does not match the assertion", error="invalid_client")
        return await authenticate_client(
            assertion, await self.client(client_id), self.settings, self.guard
        )

    async def _basic(self, authorization: str, form: dict[str, str]) -> Client:
        if not self.settings.allow_client_secret_basic:
            raise InvalidClient("client_secret_basic is not enabled here; use private_key_jwt")
        if "client_assertion" in form:
            raise InvalidRequest("use one client authentication method", error="invalid_client")
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            client_id, _, secret = decoded.partition(":")
        except (ValueError, UnicodeDecodeError):
            raise InvalidClient("malformed Basic credentials") from None
        client = await self.client(unquote(client_id))
        if (
            client is None
            or client.disabled
            or not secret_matches(client.secret_hash, unquote(secret))
        ):
            raise InvalidClient("unknown client or wrong secret")
        if self.settings.fapi2_strict or client.fapi2_strict:
            raise InvalidClient("FAPI 2.0 clients authenticate with private_key_jwt only")
        return client

    async def token(
        self, form: dict[str, str], dpop_jkt: str | None, authorization: str | None = None
    ) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if grant_type != "client_credentials" and grant_type not in self.grants:
            supported = ", ".join(["client_credentials", *self.grants])
            raise InvalidRequest(f"grant_type: one of {supported}", error="unsupported_grant_type")
        client = await self.authenticate(form, authorization)
        self.require_dpop(client, dpop_jkt)
        if grant_type in self.grants:
            return await self.grants[grant_type](client, form, dpop_jkt)
        requested = set(form.get("scope", "").split()) or set(client.scopes)
        granted = frozenset(requested & client.scopes)
        if not granted:
            raise InvalidRequest(
                "none of the requested scopes is registered", error="invalid_scope"
            )
        token, ttl = await self.tokens.issue(client, granted, dpop_jkt)
        return {
            "access_token": token,
            "token_type": "DPoP" if dpop_jkt else "Bearer",
            "expires_in": ttl,
            "scope": " ".join(sorted(granted)),
        }

    def require_dpop(self, client: Client, dpop_jkt: str | None) -> None:
        """FAPI 2.0 strict banks bind every token (and pushed request) to a DPoP key."""
        strict = self.settings.fapi2_strict or client.fapi2_strict
        if strict and client.client_type == "bank" and dpop_jkt is None:
            raise InvalidRequest(
                "FAPI 2.0: this client must bind its tokens with a DPoP proof",
                error="invalid_dpop_proof",
            )

    async def _own_token(self, client: Client, token: str) -> Caller | None:
        try:
            caller = await self.tokens.verify(token)
        except InvalidToken:
            return None
        return caller if caller.client_id == client.client_id else None

    async def revoke(self, form: dict[str, str], authorization: str | None = None) -> None:
        client = await self.authenticate(form, authorization)
        token = form.get("token")
        if not token:
            raise InvalidRequest("token is required")
        caller = await self._own_token(client, token)
        # RFC 7009: an unknown or foreign token is not an error; nothing happens.
        if caller is not None:
            await self.guard.revoke(
                caller.jti, caller.client_id, datetime.fromtimestamp(caller.expires_at, UTC)
            )

    async def introspect(
        self, form: dict[str, str], authorization: str | None = None
    ) -> dict[str, Any]:
        client = await self.authenticate(form, authorization)
        caller = await self._own_token(client, form.get("token", ""))
        if caller is None:
            return {"active": False}
        answer: dict[str, Any] = {
            "active": True,
            "client_id": caller.client_id,
            "sub": caller.client_id,
            "scope": " ".join(sorted(caller.scopes)),
            "exp": caller.expires_at,
            "jti": caller.jti,
            "token_type": "DPoP" if caller.jkt else "Bearer",
            "iss": self.settings.issuer,
            "aud": self.settings.token_audience,
        }
        if caller.jkt:
            answer["cnf"] = {"jkt": caller.jkt}
        return answer

    def metadata(self) -> dict[str, Any]:
        issuer = self.settings.issuer
        methods = ["private_key_jwt"]
        if self.settings.allow_client_secret_basic:
            methods.append("client_secret_basic")
        answer: dict[str, Any] = {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/oauth/token",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "grant_types_supported": ["client_credentials", *self.grants],
            "token_endpoint_auth_methods_supported": methods,
            "token_endpoint_auth_signing_alg_values_supported": sorted(ASSERTION_ALGS),
            "revocation_endpoint_auth_methods_supported": methods,
            "introspection_endpoint_auth_methods_supported": methods,
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"] if self.grants else [],
            "dpop_signing_alg_values_supported": ["ES256", "EdDSA", "PS256"],
        }
        if "authorization_code" in self.grants:
            answer.update(self._code_flow_metadata())
        return answer

    def _code_flow_metadata(self) -> dict[str, Any]:
        """What the authorisation code flow adds to the metadata (RFC 9126, 9396,
        7636, 9207): served once the flow's grants are wired in."""
        issuer = self.settings.issuer
        return {
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "pushed_authorization_request_endpoint": f"{issuer}/oauth/par",
            "require_pushed_authorization_requests": True,
            "authorization_details_types_supported": ["xyd_credit_report"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }

    async def jwks(self) -> dict[str, Any]:
        return (await self.keys.current()).jwks(datetime.now(UTC))
