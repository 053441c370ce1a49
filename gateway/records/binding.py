"""A delivery bound to its department: lines are stored as the writer's own, or refused.

The department comes from the authenticated client's registration (the
records route) or from `xyd ingest --department` (an operator naming the
department whose file it loads), never from the line: a line may name its
department only as the writer's name or code, and one that names another is
refused, as is a category the writer does not hold and a credit repair it may
not make. What needs the store (does the repaired record exist, and is it
about this enterprise?) is `repair_refusals`, run with the batch's write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from gateway.identifiers import is_valid_credit_code
from gateway.identity.clients import Client
from gateway.records import rejects
from gateway.records.fields import blank_to_none
from gateway.records.repository import Incoming, record_subjects
from gateway.records.schemas import SCHEMAS, CreditRepair, Penalty, RecordBase
from policies.departments import CREDIT_REPAIR, Departments, Writer

_DEPARTMENT = "source_department"
_DEPARTMENT_CODE = "source_department_code"


def load_departments(config_dir: Path) -> Departments:
    """config/departments.yaml, its categories and codes checked as the records route reads them."""
    path = config_dir / "departments.yaml"
    departments = Departments.load(path)
    for department in departments.departments:
        unknown = sorted(set(department.categories) - set(SCHEMAS))
        if unknown:
            raise ValueError(f"{path}: {department.name}: unknown categories {', '.join(unknown)}")
        if not is_valid_credit_code(department.code):
            raise ValueError(f"{path}: {department.name}: code {department.code} is not valid")
    return departments


def writer_for(client: Client, departments: Departments) -> Writer | None:
    """The department `client` delivers for, holding the categories both its
    registration and the configuration give it; None if it is no department's."""
    if client.client_type != "department" or client.department is None:
        return None
    return departments.writer(client.department, client.categories)


def repair_reviewer(departments: Departments, department: str) -> Writer | None:
    """`department` writing the credit repair its own reviewed decision grants.

    Deciding an application for credit repair of a penalty is the right of the
    department that decided the penalty, whether or not departments.yaml lets
    it deliver `credit_repair` records in its feeds: bound this way it holds
    `credit_repair` alone, for its own records alone (never the credit
    office's reach over every department's). None if it is no department."""
    writer = departments.writer(department, frozenset())
    if writer is None:
        return None
    return replace(
        writer, categories=frozenset({CREDIT_REPAIR}), credit_office=False, repairs_own=True
    )


def bind(writer: Writer, schema: type[RecordBase], fields: dict[str, Any]) -> dict[str, Any] | str:
    """`fields` as the writer's own line (its department filled in), or why it is refused."""
    refused = writer.refuses_category(schema.category)
    if refused is not None:
        return refused
    names, codes = _spellings(_DEPARTMENT), _spellings(_DEPARTMENT_CODE)
    for key, value in fields.items():
        # Only the department's own fields are looked at: a line has a dozen others.
        if (key not in names and key not in codes) or (value := blank_to_none(value)) is None:
            continue
        if key in names and not (isinstance(value, str) and writer.is_named(value)):
            shown = str(value)[:100]
            return f"{_DEPARTMENT}: {shown} is not the delivering department ({writer.name})"
        if key in codes and not (isinstance(value, str) and value.strip() == writer.code):
            return f"{_DEPARTMENT_CODE}: {str(value)[:40]} is not {writer.name}'s, {writer.code}"
    own = {key: value for key, value in fields.items() if key not in names}
    own[_DEPARTMENT] = writer.name
    return own


def refuses(writer: Writer, record: RecordBase) -> str | None:
    """What the validated record says that its writer may not say."""
    if isinstance(record, CreditRepair):
        return writer.refuses_repair(record.repaired_source_department)
    return None


def repair_target(record: RecordBase) -> tuple[str, str, str] | None:
    """(category, department, record id) of the record a repair names."""
    if not isinstance(record, CreditRepair) or record.repaired_source_department is None:
        return None
    return (
        record.repaired_category,
        record.repaired_source_department,
        record.repaired_record_id,
    )


def repair_refusals(conn: Connection, batch: Sequence[Incoming]) -> dict[int, str]:
    """Per line, why a repair in `batch` is refused: the record it names is not
    stored, or is about another enterprise. Lines not in the answer may be stored."""
    targets = [item.repairs for item in batch if item.repairs is not None]
    if not targets:
        return {}
    subjects = record_subjects(conn, targets)
    refused: dict[int, str] = {}
    for item in batch:
        if item.repairs is None:
            continue
        category, department, record_id = item.repairs
        if item.repairs not in subjects:
            refused[item.line] = (
                f"repaired_record_id: {department} has no {category} record {record_id}"[:300]
            )
        elif subjects[item.repairs] != item.credit_code:
            refused[item.line] = (
                f"repaired_record_id: {category} record {record_id} is about another subject"
            )
    return refused


def named_enterprise(schema: type[RecordBase], fields: dict[str, Any] | None) -> str | None:
    """The valid credit code a line names, whether or not the line is stored."""
    if fields is None:
        return None
    value = rejects.given(schema, fields, "credit_code")
    if isinstance(value, str) and is_valid_credit_code(value.strip().upper()):
        return value.strip().upper()
    return None


@cache
def _spellings(name: str) -> frozenset[str]:
    """Every key a line may name this field by (Penalty has both department fields)."""
    choices = Penalty.model_fields[name].validation_alias
    return frozenset(str(c) for c in getattr(choices, "choices", ())) | {name}
