"""Shortcuts taken for speed answer exactly as the long way round does."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.records.fields import _credit_code, _parse_date, parse_date_any_way
from gateway.records.repository import detail_columns
from gateway.records.schemas import License, Penalty
from gateway.store import copytext
from testkit.builders import AUTHORITY_CODE


def outcome(parse: Any, value: Any) -> Any:
    try:
        return parse(value)
    except ValueError as exc:
        return f"error: {exc}"


DAYS = st.one_of(
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
    st.from_regex(r"\A\s?[0-9０-９]{1,5}[-/.年]?[0-9]{1,3}[-/.月]?[0-9]{1,3}日?\s?\Z"),
    st.sampled_from(["9999-12-31", "2025-02-29", "2024-02-29", "0000-01-01", "2025-13-01"]),
    st.text(max_size=12),
    st.dates(),
)


@given(DAYS)
def test_dates_parse_as_before(value: Any) -> None:
    assert outcome(_parse_date, value) == outcome(parse_date_any_way, value)


def test_a_remembered_credit_code_still_refuses_a_bad_one_each_time() -> None:
    assert _credit_code(AUTHORITY_CODE.lower()) == AUTHORITY_CODE
    assert _credit_code(AUTHORITY_CODE) == AUTHORITY_CODE
    for _ in range(2):
        with pytest.raises(ValueError, match="check character should be"):
            _credit_code(AUTHORITY_CODE[:-1] + ("0" if AUTHORITY_CODE[-1] != "0" else "1"))


@pytest.mark.parametrize("schema", [Penalty, License])
def test_detail_columns_are_the_records_own_fields(schema: Any) -> None:
    # The detail row used to be built from the model's fields; it now follows
    # the table's columns, which must be the same set.
    left_out = {"record_id", "source_department", "credit_code", "subject_name"}
    fields = schema.model_fields.keys() - left_out - set(schema.personal_fields)
    fields -= {"fine_wan", "confiscation_wan"}  # penalties keep fen only
    assert set(detail_columns(schema.category)) == fields


@given(
    st.lists(st.one_of(st.none(), st.text(), st.integers(), st.booleans(), st.dates()), min_size=1)
)
def test_copy_text_escapes_only_what_copy_reads_specially(values: list[Any]) -> None:
    line = copytext.line(values)
    assert line.endswith("\n") and line.count("\n") == 1
    fields = line[:-1].split("\t")
    assert len(fields) == len(values)
    for field, value in zip(fields, values, strict=True):
        assert unescape(field) == (None if value is None else copytext_plain(value))


def copytext_plain(value: Any) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def unescape(field: str) -> str | None:
    """PostgreSQL's reading of one COPY text field (for the escapes copytext writes)."""
    if field == "\\N":
        return None
    out, chars = [], iter(field)
    for ch in chars:
        if ch == "\\":
            following = next(chars)
            out.append({"t": "\t", "n": "\n", "r": "\r"}.get(following, following))
        else:
            out.append(ch)
    return "".join(out)
