"""What a rejected line may show: the record id it gave, and its fields masked.

A rejected line still holds what it was sent with, and the rejects file and
the API's per-line answers are outputs like any other: a person's name is
masked as reports mask it (in free text too), ID numbers by all but their
last four characters, and any ID or mobile number elsewhere redacted.
Columns the category does not read are left out. A line that could not be
read into fields (bad JSON, a wrong column count,
bad UTF-8) cannot be masked field by field, so nothing of it is shown: its
line number finds it in the file the department holds.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import AliasChoices

from gateway.logs import redact
from gateway.pii import mask_name, mask_number
from gateway.records.fields import blank_to_none
from gateway.records.schemas import PARTY_CATEGORIES, RecordBase

_NAMES = frozenset({"legal_rep_name"})
_NUMBERS = frozenset({"legal_rep_id_number", "party_id_number"})


@cache
def _spellings(schema: type[RecordBase]) -> dict[str, str]:
    """Every key a line may use for a field (its Chinese aliases too) → the field's name."""
    keys: dict[str, str] = {}
    for name, info in schema.model_fields.items():
        keys[name] = name
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            keys.update({str(choice): name for choice in alias.choices})
    return keys


def given(schema: type[RecordBase], fields: dict[str, Any], name: str) -> Any:
    """The value a line gave for field `name`, under whichever spelling, blank as None."""
    spellings = _spellings(schema)
    for key, value in fields.items():
        if spellings.get(key) == name and (value := blank_to_none(value)) is not None:
            return value
    return None


def record_id(schema: type[RecordBase], fields: dict[str, Any]) -> str | None:
    value = given(schema, fields, "record_id")
    return redact(value)[:128] if isinstance(value, str) else None


def _names_a_person(schema: type[RecordBase], fields: dict[str, Any]) -> bool:
    """Whether the subject may be a person: unless the line says it is an organisation."""
    if "party_category" not in schema.model_fields:
        return False
    category = given(schema, fields, "party_category")
    if category is None:
        return False  # the schema's default: a legal person
    return PARTY_CATEGORIES.get(str(category).strip(), str(category)) not in (
        "legal_person",
        "individual_business",
    )


def _redacted(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, mask in names.items():
            value = value.replace(name, mask)
        return redact(value)
    if isinstance(value, list):
        return [_redacted(v, names) for v in value]
    if isinstance(value, dict):
        return {str(k): _redacted(v, names) for k, v in value.items()}
    return value


def masked(schema: type[RecordBase], fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` as a rejected line shows them: only those the category reads (a column
    it ignores played no part in the rejection and may hold anything)."""
    spellings = _spellings(schema)
    personal = _NAMES | ({"subject_name"} if _names_a_person(schema, fields) else set())
    # A person named in a name field is masked in free text too ("当事人王小明……").
    names = {
        name: mask_name(name)
        for field in personal
        if isinstance(name := given(schema, fields, field), str) and len(name.strip()) > 1
    }
    shown: dict[str, Any] = {}
    for key, value in fields.items():
        field = spellings.get(key)
        if field is None:
            continue
        if value is None or value == "":
            shown[key] = value
        elif field in personal:
            shown[key] = mask_name(str(value))
        elif field in _NUMBERS:
            shown[key] = mask_number(str(value))
        else:
            shown[key] = _redacted(value, names)
    return shown
