"""Field types shared by the record schemas.

Feeds arrive as CSV (every value a string, Chinese headers, dates in several
spellings) and as NDJSON (typed values). These types accept both, strictly:
a JSON `true` is never a number, an amount never loses a digit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from gateway import bounds
from gateway.identifiers import InvalidIdentifier, remembered_credit_code

_BLANK = {"", "-", "—", "无", "null", "NULL", "None"}
_OPEN_ENDED = {"长期", "永久", "长期有效", "9999-12-31", "99991231"}
_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if value in _BLANK:
            return None
    return value


def present(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` without its blank values (an empty CSV cell, "", JSON null).

    A blank is "not given": an optional field takes its default, a required
    one is reported missing, the same in every category and from either
    reader. Left in, it would reach a field's type as None and be refused.
    """
    return {
        name: value
        for name, value in fields.items()
        if value is not None and not (type(value) is str and value.strip() in _BLANK)
    }


def _parse_date(value: Any) -> Any:
    if type(value) is str and _ISO_DAY.fullmatch(value) and value not in _OPEN_ENDED:
        # The usual spelling, answered as `parse_date_any_way` would answer it.
        try:
            return date(int(value[:4]), int(value[5:7]), int(value[8:]))
        except ValueError:
            raise ValueError(f"{value!r} is not a calendar date") from None
    return parse_date_any_way(value)


def parse_date_any_way(value: Any) -> Any:
    """Every spelling a department sends, blank and open-ended ones included."""
    value = blank_to_none(value)
    if value is None or isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date string such as 2024-03-05")
    text = value.strip().split(" ")[0].split("T")[0]
    if text in _OPEN_ENDED:
        return None
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            try:
                return date(year, month, day)
            except ValueError:
                raise ValueError(f"{value!r} is not a calendar date") from None
    raise ValueError(f"{value!r} is not a date (expected YYYY-MM-DD)")


def _reject_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return blank_to_none(value)


def _bounded(parse: Callable[[Any], Any]) -> BeforeValidator:
    """`parse` (a `gateway.bounds` one) for what is not blank; its errors are ValueErrors."""

    def validate(value: Any) -> Any:
        value = blank_to_none(value)
        return None if value is None else parse(value)

    return BeforeValidator(validate)


def _bounded_day(value: Any) -> Any:
    day = _parse_date(value)
    return bounds.day_within(day) if isinstance(day, date) else day


def _period_within(text: str) -> str:
    bounds.day_within(date(int(text[:4]), int(text[5:]), 1))
    return text


def _parse_bool(value: Any) -> Any:
    value = blank_to_none(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "是", "y"):
            return True
        if lowered in ("false", "0", "no", "否", "n"):
            return False
    raise ValueError(f"{value!r} is not a yes/no value")


def _credit_code(value: Any) -> Any:
    value = blank_to_none(value)
    if isinstance(value, str):
        try:
            return remembered_credit_code(value)
        except InvalidIdentifier as exc:
            raise ValueError(str(exc)) from None
    return value  # pydantic's core says what is wrong with it


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(value: Any) -> Any:
    """Blanks become None; control characters are refused."""
    value = blank_to_none(value)
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError("contains control characters")
    return value


def wan_to_fen(amount: Decimal) -> int:
    """An amount in 10,000 yuan, as `Amount` bounded it, in integer fen, exactly."""
    return int(amount * bounds.WAN.fen)


# Each type below costs a value one Python call at most, before pydantic's
# core: constraints written after a validator (`Annotated[Text, Field(...)]`)
# run as Python functions instead, one call each, and a feed line has a dozen
# such fields. So every constraint comes first, then the one validator.
Cleaned = BeforeValidator(clean_text)
Text = Annotated[str, Cleaned]
ShortText = Annotated[str, Field(min_length=1, max_length=200), Cleaned]
RecordId = Annotated[str, Field(min_length=1, max_length=128), Cleaned]
LongText = Annotated[str, Field(max_length=4000), Cleaned]
# Day and Period: bounds.DAY_FLOOR to bounds.DAY_CEILING (the monitor's
# window arithmetic overflows at year 1); open-ended spellings are None before.
Day = Annotated[date, BeforeValidator(_bounded_day)]
OptionalDay = Annotated[date | None, BeforeValidator(_bounded_day)]  # 长期 is None: no end
Period = Annotated[
    str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$"), AfterValidator(_period_within)
]
# Amounts: gateway.bounds, before any arithmetic (a fen from "1e999000" is a
# million-digit integer); Amount in 10,000 yuan, Fen in fen, both at most bounds.MAX_FEN.
Amount = Annotated[Decimal, _bounded(lambda value: bounds.amount(value, bounds.WAN))]
Fen = Annotated[int, _bounded(lambda value: bounds.fen(value, bounds.FEN))]
Score = Annotated[
    Decimal, _bounded(lambda value: bounds.bounded_decimal(value, decimals=2, most=Decimal(100)))
]
NotBool = BeforeValidator(_reject_bool)
Count = Annotated[int, Field(ge=0, le=10**12), NotBool]
Flag = Annotated[bool, BeforeValidator(_parse_bool)]
CreditCode = Annotated[str, BeforeValidator(_credit_code)]
