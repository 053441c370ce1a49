"""OAuth errors: problem documents that also carry RFC 6749's `error` member."""

from __future__ import annotations

from typing import Any

from gateway.errors import BadRequest, Forbidden, Unauthorized


class InvalidClient(Unauthorized):
    type_slug, title = "invalid-client", "Client authentication failed"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail, error="invalid_client", error_description=detail, **extensions)
        self.headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'


class InvalidRequest(BadRequest):
    type_slug, title = "invalid-request", "Invalid OAuth request"

    def __init__(self, detail: str, *, error: str = "invalid_request") -> None:
        super().__init__(detail, error=error, error_description=detail)


class InvalidToken(Unauthorized):
    type_slug, title = "invalid-token", "Invalid access token"

    def __init__(self, detail: str, *, scheme: str = "Bearer") -> None:
        super().__init__(detail, scheme=scheme, error="invalid_token", error_description=detail)
        self.headers["WWW-Authenticate"] = (
            f'{scheme} error="invalid_token", error_description="{_quote(detail)}"'
        )


class InsufficientScope(Forbidden):
    type_slug, title = "insufficient-scope", "Token lacks the required scope"

    def __init__(self, scope: str) -> None:
        detail = f"this operation needs scope {scope}"
        super().__init__(detail, error="insufficient_scope", error_description=detail)
        self.headers["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{scope}"'


def _quote(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")
