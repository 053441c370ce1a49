"""What the repair routes take (validated) and answer (documentation only, `Doc`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from gateway.apidocs import Doc

Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Status = Literal["pending", "approved", "rejected"]
# Bounded here to the largest file the settings may allow (50 MiB); the setting's own
# bound is checked before decoding (evidence.decode_base64).
Base64Text = Annotated[str, StringConstraints(min_length=4, max_length=70_000_000)]


class EvidenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    file_name: str = Field(
        min_length=1, max_length=255, description="As the applicant named it; shown only"
    )
    content_base64: Base64Text = Field(
        description="The file, standard base64 with padding; PDF, JPEG or PNG by its content"
    )


class CommitmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    accepted: Literal[True] = Field(description="The applicant accepted the commitment")
    text_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 (hex) of the Chinese text shown, as GET /v1/repairs/commitment "
        "gives it: the current text, or 422",
    )


class RepairIn(BaseModel):
    """POST /v1/repairs: a platform applies on an enterprise's behalf."""

    model_config = ConfigDict(extra="forbid", strict=True)

    credit_code: str = Field(min_length=18, max_length=18, description="The enterprise")
    record_id: int = Field(ge=1, le=2**62, description="The penalty's id in reports")
    statement: Note | None = Field(None, description="What the enterprise says it corrected")
    commitment: CommitmentIn
    evidence: list[EvidenceIn] = Field(
        min_length=1, max_length=20, description="1 to XYD_REPAIR_EVIDENCE_MAX_FILES files"
    )


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    decision: Literal["approve", "reject"]
    reason: Note | None = Field(None, description="Required to reject; shown to the applicant")

    @model_validator(mode="after")
    def _reason_to_reject(self) -> DecisionIn:
        if self.decision == "reject" and self.reason is None:
            raise ValueError("reason: required to reject an application")
        return self


class EvidenceDoc(Doc):
    id: int
    file_name: str
    media_type: Literal["application/pdf", "image/jpeg", "image/png"]
    size: int
    sha256: str


class CommitmentDoc(Doc):
    version: str
    text_sha256: str
    accepted_at: datetime
    record_id: str = Field(description="The commitment record's id (the credit office's)")


class DecisionDoc(Doc):
    decision: Literal["approved", "rejected"]
    reason: str | None
    decided_by: str
    decided_at: datetime
    repair_record_id: str | None = Field(description="The credit_repair record, if approved")


class Application(Doc):
    """A repair application as the routes answer it."""

    id: str
    credit_code: str
    record_id: int
    department: str = Field(description="Decided the penalty; reviews the application")
    status: Status
    channel: Literal["platform", "portal"]
    applied_by: str
    applied_at: datetime
    review_due_at: datetime
    statement: str | None
    commitment: CommitmentDoc
    evidence: list[EvidenceDoc]
    decision: DecisionDoc | None


class Applications(Doc):
    items: list[Application]


class CommitmentText(Doc):
    version: str
    commitment_type: str
    title_zh: str
    title_en: str
    text_zh: str
    text_en: str = Field(description="A translation for reading; the Chinese is accepted")
    text_sha256: str
