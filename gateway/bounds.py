"""Amounts and days from outside, bounded before any arithmetic: the one place
records (POST /v1/records, `xyd ingest`) and the five platforms' adapters parse them.

An amount is refused by its length and its spelling first, so a hostile one
costs microseconds whatever it is: `Decimal("1e999000")` is cheap, but the fen
computed from it, turned into an `int`, is a million-digit integer built on
the event loop (45 s, the worker deaf meanwhile). Spelled as text, an amount is
ASCII digits with at most one '.' and at most its unit's decimals: no sign,
exponent, space, '_', thousands separator or full-width digit (`int()` and
`Decimal()` take "1_000" and "１２"; what the platforms' specs and the
catalogue's columns write is plain decimal text).

MAX_FEN, 10^15 fen, is ten trillion (十万亿) yuan: ten times the largest
registered capitals (around 10^12 yuan), beyond any fine, confiscation or loan,
and 9,000 such amounts still sum within a BIGINT column (9.2 × 10^18).

Days: DAY_FLOOR is the founding of the People's Republic (1949-10-01); no
decision, registration, listing or loan this gateway holds is older, and a
day like 0001-01-01 or 9999-12-30 breaks the arithmetic that looks a window
back or ahead of it (the monitor's `occurred_at - span`). DAY_CEILING
(2199-12-31) leaves open-ended validity (长期, 9999-12-31, read as no end)
apart and any year a department writes for a real end date in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeVar

MAX_FEN = 10**15
MAX_TEXT = 40  # characters: the longest spelling of MAX_FEN in any unit, with room
DAY_FLOOR = date(1949, 10, 1)
DAY_CEILING = date(2199, 12, 31)
_FIRST = datetime(DAY_FLOOR.year, DAY_FLOOR.month, DAY_FLOOR.day, tzinfo=UTC)
_LAST = datetime(DAY_CEILING.year + 1, 1, 1, tzinfo=UTC)
_N = TypeVar("_N", int, float, Decimal)
# `[0-9]`, not `\d`: Python's `\d` matches every script's digits.
_DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.([0-9]+))?")


class InvalidAmount(ValueError):
    """An amount that is not an exact, non-negative, bounded number of fen."""


class DayOutOfRange(ValueError):
    """A day before DAY_FLOOR or after DAY_CEILING."""


@dataclass(frozen=True, slots=True)
class Unit:
    name: str
    fen: int  # fen in one unit
    decimals: int  # the most decimals an amount in this unit is written with

    def __post_init__(self) -> None:
        # Every allowed decimal is then a whole number of fen: no rounding anywhere.
        assert self.fen % 10**self.decimals == 0, self

    @property
    def most(self) -> Decimal:
        return Decimal(MAX_FEN // self.fen)


FEN = Unit("fen", 1, 0)
YUAN = Unit("yuan", 100, 2)
WAN = Unit("10,000 yuan", 1_000_000, 6)


def bounded_decimal(value: object, *, decimals: int, most: Decimal) -> Decimal:
    """`value` (text, a JSON integer or number, a Decimal) as a Decimal from 0 to
    `most` with at most `decimals` decimals; InvalidAmount saying why not."""
    if isinstance(value, str):
        return _from_text(value, decimals, most)
    if isinstance(value, bool):  # before int: a JSON true is not 1
        raise InvalidAmount("must be a number, not a boolean")
    if isinstance(value, int):
        if value.bit_length() > 64:  # before comparing it: that converts it to a Decimal
            raise InvalidAmount(f"is more than {most}")
        return Decimal(_in_range(value, most))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidAmount("must be a finite number")
        _in_range(value, most)
        # Its shortest repr: a float has already lost digits. Bounded above, so
        # short; trailing zeros are the float's spelling, not the sender's.
        number = Decimal(repr(value)).normalize()
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidAmount("must be a finite number")
        # Comparisons and the exponent read the digits' count, never expand them.
        number = _in_range(value, most)
    else:
        raise InvalidAmount("must be a decimal number")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > decimals:
        raise InvalidAmount(f"more than {decimals} decimals")
    return number


def _in_range(number: _N, most: Decimal) -> _N:
    if number < 0:
        raise InvalidAmount("must not be negative")
    if number > most:
        raise InvalidAmount(f"is more than {most}")
    return number


def _from_text(text: str, decimals: int, most: Decimal) -> Decimal:
    if len(text) > MAX_TEXT:
        raise InvalidAmount(f"longer than {MAX_TEXT} characters")
    spelled = _DECIMAL_TEXT.fullmatch(text)
    if spelled is None:
        raise InvalidAmount(
            f"{text!r} is not a number in plain decimals (ASCII digits, at most one '.'; "
            "no sign, exponent, space, '_' or thousands separator)"
        )
    fraction = spelled.group(1)
    if fraction is not None and len(fraction) > decimals:
        raise InvalidAmount(f"{text!r} has more than {decimals} decimals")
    number = Decimal(text)
    if number > most:
        raise InvalidAmount(f"{text!r} is more than {most}")
    return number


def amount(value: object, unit: Unit) -> Decimal:
    """An amount in `unit`, bounded by MAX_FEN and the unit's decimals."""
    try:
        return bounded_decimal(value, decimals=unit.decimals, most=unit.most)
    except InvalidAmount as exc:
        raise InvalidAmount(f"amount in {unit.name}: {exc}") from None


def fen(value: object, unit: Unit) -> int:
    """An amount in `unit` as integer fen, exactly: at most MAX_FEN."""
    return int(amount(value, unit) * unit.fen)


def fen_from_text(text: object, unit: Unit) -> int:
    """A platform's amount, which its spec writes as text: anything else is refused."""
    if not isinstance(text, str):
        raise InvalidAmount(f"amount in {unit.name} must be a decimal string")
    return fen(text, unit)


def fen_from_yuan(text: object) -> int:
    """'1500000.00' yuan → 150000000 fen, exactly; more than 2 decimals or junk is an error."""
    return fen_from_text(text, YUAN)


def fen_from_wan(text: object) -> int:
    """'150.000001' (units of 10,000 yuan, up to 6 decimals) → fen, exactly."""
    return fen_from_text(text, WAN)


def day_within(day: date) -> date:
    """`day` if it lies from DAY_FLOOR to DAY_CEILING, else DayOutOfRange."""
    if not DAY_FLOOR <= day <= DAY_CEILING:
        raise DayOutOfRange(
            f"{day.isoformat()} is outside {DAY_FLOOR.isoformat()} to {DAY_CEILING.isoformat()}"
        )
    return day


def moment_within(moment: datetime) -> bool:
    """Whether an aware `moment` lies in the days DAY_FLOOR to DAY_CEILING (UTC)."""
    return _FIRST <= moment < _LAST
