"""What the alert routes answer (documentation; see gateway/apidocs.py): the
members `service.render` writes, and the live stream's events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from gateway.apidocs import Doc
from policies.risk.base import Severity

AlertStatus = Literal["open", "acknowledged", "resolved"]


class Alert(Doc):
    id: str
    rule: str
    subject: str = Field(description="What the rule found it on, e.g. `loan:<platform>:<no>`")
    severity: Severity
    title: str
    credit_code: str | None
    status: AlertStatus
    evidence: list[str] = Field(description="Ids of the events and records that triggered it")
    details: dict[str, Any] = Field(description="The rule's own facts")
    first_seen_at: datetime
    last_seen_at: datetime
    updated_at: datetime
    revision: int = Field(description="Moves on every change; the live stream's event id")


class AlertAction(Doc):
    at: datetime
    actor: str = Field(description='A user, a client, or "monitor"')
    action: Literal["raised", "updated", "acknowledged", "resolved"]
    note: str | None


class AlertDetail(Alert):
    history: list[AlertAction] = Field(description="Oldest first")


class AlertPage(Doc):
    items: list[Alert] = Field(description="Newest change first")
    next_cursor: str | None = Field(description="Pass back as `cursor`; null on the last page")


def stream_docs() -> dict[str, Any]:
    """The `text/event-stream` media type: each event an `alert` carrying one Alert."""
    return {
        "itemSchema": {
            "type": "object",
            "required": ["event", "data", "id"],
            "properties": {
                "event": {"const": "alert"},
                "id": {"type": "string", "pattern": "^[0-9]+$", "description": "`revision`"},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": Alert.model_json_schema(mode="serialization"),
                },
            },
        }
    }
