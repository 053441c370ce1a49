"""Who may deliver which government records: config/departments.yaml and the decision.

`Departments` is the declarative part: every department that delivers records,
its authority code (统一社会信用代码) and the categories it may deliver; the
credit office, which repairs any department's records; the registration
authority, the only one whose registration records create or rename
enterprises. `Writer` is one department bound to a delivery (its client's
registration, or `xyd ingest --department`): what a line may say is decided
against it, never against what the line says of itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from policies.configfile import load_yaml

REGISTRATION, CREDIT_REPAIR = "registration", "credit_repair"
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")]


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name = Field(description="As records name it in source_department")
    code: Code = Field(description="Its unified social credit code (authority code)")
    categories: list[str] = Field(min_length=1, description="Record categories it may deliver")


class Departments(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    credit_office: Name = Field(description="Repairs (信用修复) any department's records")
    registration_authority: Name = Field(description="Alone delivers registration records")
    repairs_by_record_owner: bool = Field(
        True, description="A department holding credit_repair may repair its own records"
    )
    departments: list[Department] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Departments:
        names = [d.name for d in self.departments]
        codes = [d.code for d in self.departments]
        for what, values in (("name", names), ("code", codes)):
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ValueError(f"departments: {what} listed twice: {', '.join(twice)}")
        for role in ("credit_office", "registration_authority"):
            if getattr(self, role) not in names:
                raise ValueError(f"{role}: {getattr(self, role)} is not in departments")
        for department in self.departments:
            if (
                REGISTRATION in department.categories
                and department.name != self.registration_authority
            ):
                raise ValueError(
                    f"departments: {department.name} holds registration; only the "
                    "registration authority may"
                )
            if (
                CREDIT_REPAIR in department.categories
                and department.name != self.credit_office
                and not self.repairs_by_record_owner
            ):
                raise ValueError(
                    f"departments: {department.name} holds credit_repair; with "
                    "repairs_by_record_owner false only the credit office may"
                )
        return self

    @classmethod
    def load(cls, path: Path) -> Departments:
        """Read and validate; a bad file raises ValueError naming the field."""
        return load_yaml(path, cls.model_validate)

    def find(self, name_or_code: str) -> Department | None:
        """The department with this name or authority code."""
        wanted = name_or_code.strip()
        return next((d for d in self.departments if wanted in (d.name, d.code)), None)

    def writer(self, name_or_code: str, categories: frozenset[str] | None = None) -> Writer | None:
        """`name_or_code` bound to a delivery, holding `categories` (default: all it may
        deliver) where configured: a client registered for more holds no more."""
        department = self.find(name_or_code)
        if department is None:
            return None
        allowed = frozenset(department.categories)
        return Writer(
            name=department.name,
            code=department.code,
            categories=allowed if categories is None else allowed & categories,
            credit_office=department.name == self.credit_office,
            registration_authority=department.name == self.registration_authority,
            repairs_own=self.repairs_by_record_owner,
        )


@dataclass(frozen=True, slots=True)
class Writer:
    """The department a delivery is bound to; each method answers why a line is refused."""

    name: str
    code: str
    categories: frozenset[str]
    credit_office: bool
    registration_authority: bool
    repairs_own: bool

    def is_named(self, value: str) -> bool:
        return value.strip() in (self.name, self.code)

    def refuses_category(self, category: str) -> str | None:
        if category not in self.categories:
            held = ", ".join(sorted(self.categories)) or "none"
            return f"{self.name} may not deliver {category} records (it holds: {held})"
        if category == REGISTRATION and not self.registration_authority:
            return "only the registration authority delivers registration records"
        return None

    def refuses_repair(self, owner: str | None) -> str | None:
        """May this department repair a record delivered by `owner`?"""
        if owner is None:
            return "repaired_source_department: required: the department whose record is repaired"
        if self.credit_office:
            return None
        if self.repairs_own and self.is_named(owner):
            return None
        return (
            f"repaired_source_department: {owner}'s records are repaired by the credit office"
            + (" or by that department" if self.repairs_own else "")
        )
