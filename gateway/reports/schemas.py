"""What the credit report answers (documentation; see gateway/apidocs.py).

The members are those `build.ReportBuilder.build`, `build.consent_cut` and
`build.request_members` write, plus `signature` (signing.py). Section names come
from config/report.yaml, so `sections` and `completeness` are maps; a
section's items are the records shown (their catalogue fields vary by
category, so those objects are open) or, in `loans`, ledger rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from gateway.apidocs import Doc, OpenDoc, sometimes
from gateway.enterprises.schemas import EnterpriseBasic
from gateway.loans.schemas import Loan
from policies.consent import Purpose

# A compact JWS (RFC 7515): header.payload.signature, each base64url.
COMPACT_JWS = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
# Detached (RFC 7515 appendix F): the payload left out.
DETACHED_JWS = r"^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$"


class ItemDispute(Doc):
    status: Literal["open", "upheld", "rejected"]
    opened_at: datetime
    resolved_at: datetime | None


class ReportItem(OpenDoc):
    """A record shown: its catalogue fields (by category) and these."""

    record_id: int = Field(description="The record's id, cited by score reasons' `evidence`")
    category: str
    source_record_id: str = Field(description="The providing department's record id")
    source_department: str
    version: int
    data_as_of: datetime
    dispute: ItemDispute = sometimes("The open dispute (异议), else the latest resolved one")
    published_until: date = sometimes("Last day the record may be published")
    publication_rule_set: str | None = sometimes("The publication rules that set that day")


class ReportSection(Doc):
    items: list[ReportItem | Loan]
    enterprise: EnterpriseBasic = sometimes("In `basic` only: the registration data")


class SectionCompleteness(Doc):
    status: Literal["complete", "partial", "unavailable"]
    reason: str | None = Field(description="Why not complete; null when complete")


class ScoreReason(Doc):
    indicator: str
    name: str
    department: str = Field(
        description="The model's key of the department that decided the records; for a "
        "loan indicator (`LOAN-…`), the platform that reported the loans (`loans` items' "
        "`platform`)"
    )
    department_name: str
    points: int
    evidence: list[int | str] = Field(
        description="What triggered it: records by `record_id` (integers) or, for a loan "
        "indicator, loans as `platform:loan_no` (strings: the `loans` items' `platform` and "
        "`loan_no`)"
    )
    evidence_withheld: int = sometimes(
        "Evidence from sections the consent does not cover (`loans` included), counted but "
        "not shown",
        ge=1,
    )


class NotScored(Doc):
    code: str
    reason: str


class ReportScore(Doc):
    value: int | None = Field(description="Null when not scored")
    grade: str | None
    risk_class: str | None
    model_version: str
    base: int
    reasons: list[ScoreReason]
    principal_negative_reasons: list[ScoreReason]
    not_scored: NotScored | None


class ScoreTrendPoint(Doc):
    quarter: str = Field(pattern=r"^[0-9]{4}Q[1-4]$")
    as_of: date
    value: int | None
    grade: str | None
    not_scored: str | None = Field(description="The not-scored code, if not scored")


class Recipient(Doc):
    """Who the report was issued to: a leaked copy names its bank."""

    client_id: str = Field(
        description="The grantee bank's OAuth client id (`portal` for the enterprise's own)"
    )
    org_code: str | None = Field(description="The bank's organisation code, as registered")


class CreditReport(Doc):
    """The report as `application/json`: with `signature`, a detached JWS."""

    report_id: str = Field(
        pattern=r"^rpt_[A-Za-z0-9_-]{16}$",
        description="Random; `GET /v1/reports/{report_id}` gives the report again to its recipient",
    )
    credit_code: str
    enterprise_name: str
    data_version: int
    data_as_of: datetime | None = Field(description="Newest change in the data; null if none")
    as_of_date: date = Field(description="The report's day (Chengdu calendar)")
    generated_at: datetime
    consent_id: str | None = Field(
        description="The consent it was issued under; null for the enterprise's own report"
    )
    purpose: Purpose | Literal["self_query"] = Field(
        description="The consent's purpose; `self_query` for the enterprise's own report "
        "(the portal's, free and counted against no bank)"
    )
    recipient: Recipient
    valid_until: datetime = Field(
        description=(
            "Until when the content may be relied on: 30 days after `generated_at`, or the "
            "start (Beijing time) of the day after a shown record's last day of publication "
            "if sooner. New records can arrive sooner still: fetch a new report to be sure"
        )
    )
    sections: dict[str, ReportSection] = Field(description="Only the sections consented to")
    sections_not_consented: list[str]
    completeness: dict[str, SectionCompleteness] = Field(description="Per section shown")
    score: ReportScore
    score_trend: list[ScoreTrendPoint] = Field(description="The last four quarter ends")
    signature: str = Field(
        pattern=DETACHED_JWS,
        description=(
            "Detached JWS over the report's RFC 8785 canonical JSON without this member; "
            "protected header `{alg, kid, typ: xyd-credit-report+jws}`"
        ),
    )
