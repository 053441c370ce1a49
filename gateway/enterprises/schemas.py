"""What GET /v1/enterprises/{credit_code} answers (documentation; see gateway/apidocs.py)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from gateway.apidocs import Doc


class EnterpriseBasic(Doc):
    """Registration data; also the `basic` section's `enterprise` in a credit report."""

    credit_code: str = Field(min_length=18, max_length=18)
    name: str
    entity_type: str
    division_code: str = Field(description="Administrative division (GB/T 2260)")
    legal_rep_masked: str | None = Field(description="The legal representative, masked")
    registered_on: date | None
    status: str
    registered_capital_fen: int | None
    industry_code: str | None


class Enterprise(EnterpriseBasic):
    data_version: int = Field(ge=0, description="Moves on every change of the enterprise's data")
    updated_at: datetime
