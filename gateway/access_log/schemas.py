"""What GET /v1/enterprises/{credit_code}/access-log answers (documentation; see
gateway/apidocs.py). The members are `access_log.page`'s columns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from gateway.apidocs import Doc


class AccessLogEntry(Doc):
    seq: int = Field(description="Position in the audit hash chain")
    at: datetime
    client_id: str
    client_name: str | None = Field(description="Null for a client no longer registered")
    client_type: str | None
    org_code: str | None = Field(description="The bank code, for a bank")
    route: str
    decision: Literal["allow", "deny", "error"] = Field(
        description="`error`: admitted, then the gateway failed (a 5xx); nothing was disclosed"
    )
    reason: str | None
    consent_id: str | None
    purpose: str | None
    request_id: str | None


class AccessLogPage(Doc):
    credit_code: str
    items: list[AccessLogEntry] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass back as `cursor`; null on the last page")
