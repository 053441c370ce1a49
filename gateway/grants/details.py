"""`authorization_details` of type `xyd_credit_report` (RFC 9396): what a bank asks
an enterprise to consent to, checked by the rules `POST /v1/consents` follows."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from gateway.consents.schemas import ConsentTerms, CreditCode, DailyAccesses, Sections
from gateway.identity.errors import InvalidRequest
from policies.consent import Purpose

DETAIL_TYPE = "xyd_credit_report"
MAX_DETAILS_CHARS = 4096


class CreditReportDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["xyd_credit_report"]
    credit_code: CreditCode
    purpose: Purpose
    sections: Sections
    valid_until: AwareDatetime = Field(strict=False)
    max_daily_accesses: DailyAccesses | None = None


class InvalidDetails(InvalidRequest):
    type_slug, title = "invalid-authorization-details", "Invalid authorization_details"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, error="invalid_authorization_details")


def parse_details(text: str) -> dict[str, Any]:
    """The one detail object of `text`, as stored and answered again (JSON types,
    sections sorted and unique); InvalidDetails saying what is wrong."""
    if len(text) > MAX_DETAILS_CHARS:
        raise InvalidDetails(f"authorization_details: at most {MAX_DETAILS_CHARS} characters")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidDetails("authorization_details: not JSON") from None
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        raise InvalidDetails("authorization_details: a JSON array of exactly one object")
    if value[0].get("type") != DETAIL_TYPE:
        raise InvalidDetails(f"authorization_details: type must be {DETAIL_TYPE}")
    try:
        detail = CreditReportDetail.model_validate(value[0])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidDetails(f"authorization_details.{where}: {first['msg']}") from None
    stored = detail.model_dump(mode="json", exclude_none=True)
    stored["sections"] = sorted(set(detail.sections))
    return stored


def as_terms(stored: dict[str, Any], grantee: str) -> ConsentTerms:
    """The terms `POST /v1/consents` would take for this detail, for the bank
    that pushed it: what PAR checks and what the approval registers."""
    return ConsentTerms.model_validate(
        {
            "credit_code": stored["credit_code"],
            "grantee": grantee,
            "purpose": stored["purpose"],
            "scopes": stored["sections"],
            "valid_until": stored["valid_until"],
            "max_daily_accesses": stored.get("max_daily_accesses"),
        }
    )
