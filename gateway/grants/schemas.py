"""What the code flow's routes answer (documentation; see gateway/apidocs.py)."""

from __future__ import annotations

from pydantic import Field

from gateway.apidocs import Doc


class PushedRequest(Doc):
    request_uri: str = Field(description="`urn:ietf:params:oauth:request_uri:…`, single use")
    expires_in: int = Field(ge=1, le=600, description="Seconds the request_uri lives")
