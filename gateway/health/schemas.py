"""What /healthz and /readyz answer (documentation; see gateway/apidocs.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.apidocs import Doc


class Health(Doc):
    status: Literal["ok"]


class Readiness(Doc):
    status: Literal["ready"]
    checks: dict[Literal["database", "redis"], Literal["ok"]] = Field(
        description="Each dependency checked; `redis` only when one is configured"
    )
