"""What the OAuth endpoints answer (documentation; see gateway/apidocs.py): the
members `service.Identity` and `keys.KeyRing.jwks` write."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.apidocs import Doc, OpenDoc, sometimes
from gateway.keys.store import SigningAlg

TokenType = Literal["Bearer", "DPoP"]
AuthMethod = Literal["private_key_jwt", "client_secret_basic"]


class TokenAnswer(Doc):
    """RFC 6749 §5.1: `DPoP` when the token is bound to the proof's key (RFC 9449)."""

    access_token: str = Field(description="A JWT (RFC 9068, `typ: at+jwt`)")
    token_type: TokenType
    expires_in: int = Field(ge=1, description="Seconds")
    scope: str = Field(description="The scopes granted, space-separated")
    authorization_details: list[dict[str, object]] | None = Field(
        None,
        description="Code flow: what the enterprise approved, with the created `consent_id`",
    )
    refresh_token: str | None = Field(
        None, description="Code flow, for a consent outliving the token: single use, rotated"
    )


class Confirmation(Doc):
    jkt: str = Field(description="The bound DPoP key's JWK thumbprint (RFC 7638)")


class ActiveToken(Doc):
    active: Literal[True]
    client_id: str
    sub: str
    scope: str
    exp: int = Field(description="Seconds since the epoch")
    jti: str
    token_type: TokenType
    iss: str
    aud: str
    cnf: Confirmation = sometimes("For a DPoP-bound token")


class InactiveToken(Doc):
    """Expired, revoked, malformed, or another client's token: nothing more is said."""

    active: Literal[False]


Introspection = ActiveToken | InactiveToken


class ServerMetadata(Doc):
    """RFC 8414."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    revocation_endpoint: str
    introspection_endpoint: str
    grant_types_supported: list[
        Literal["client_credentials", "authorization_code", "refresh_token"]
    ]
    token_endpoint_auth_methods_supported: list[AuthMethod]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    revocation_endpoint_auth_methods_supported: list[AuthMethod]
    introspection_endpoint_auth_methods_supported: list[AuthMethod]
    scopes_supported: list[str]
    response_types_supported: list[str]
    dpop_signing_alg_values_supported: list[str]
    authorization_endpoint: str
    pushed_authorization_request_endpoint: str
    require_pushed_authorization_requests: bool
    authorization_details_types_supported: list[Literal["xyd_credit_report"]]
    code_challenge_methods_supported: list[Literal["S256"]]
    authorization_response_iss_parameter_supported: bool


class PublicJwk(OpenDoc):
    """A public JWK (RFC 7517); the key type's own members (`crv`, `x`, `y`) besides these."""

    kty: str
    kid: str
    use: Literal["sig"]
    alg: SigningAlg


class Jwks(Doc):
    keys: list[PublicJwk] = Field(
        description="Access-token, report, audit and acknowledgement signing keys"
    )
