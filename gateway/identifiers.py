"""Unified social credit codes (GB 32100-2015) and resident ID numbers (GB 11643).

Validators normalise before judging: surrounding whitespace is stripped and
ASCII letters are upper-cased. Nothing else is folded: a full-width letter or
digit is a different character and is rejected as one, because quietly
accepting look-alikes would let two spellings of one code hash differently.

Every failure is an `InvalidIdentifier` (a `ValueError`) carrying:

- `reason`, a stable machine code: `bad_length`, `bad_character`,
  `bad_structure` (parts handed to a builder or check-character helper do not
  have the shape of a code), `bad_check`, `bad_org_check`, `bad_birth_date`;
- `position`, the 1-based character at fault, or None when no one character is;
- a message a data clerk can act on, e.g. ``check character should be G``.
"""

from __future__ import annotations

import functools
import string
from datetime import date
from operator import contains, mul
from typing import Final, Literal

from gateway.errors import InvalidValue, NotFound

Reason = Literal[
    "bad_length", "bad_character", "bad_structure", "bad_check", "bad_org_check", "bad_birth_date"
]

CREDIT_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_LENGTH: Final = 18
RESIDENT_ID_LENGTH: Final = 18

_CREDIT_VALUE: Final = {ch: i for i, ch in enumerate(CREDIT_ALPHABET)}
_CREDIT_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11714 values letters by their place in the full Latin alphabet (A=10 … Z=35),
# not by their place in the credit-code alphabet. Codes with letters in the
# organisation body (such as the "MA…" bodies of recent registrations) check
# only under this mapping.
_ORG_VALUE: Final = {ch: int(ch, 36) for ch in CREDIT_ALPHABET}
_ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)

_DIGITS: Final = frozenset(string.digits)
_ALPHABET_SET: Final = frozenset(CREDIT_ALPHABET)
# Not only the 1/5/9/Y best known from the standard: authorities 2-8, A and N
# were assigned too and appear on codes in circulation (law firms, registered
# by judicial administration, start with 3). Rejecting them rejects real bodies.
_AUTHORITIES: Final = frozenset("123456789ANY")
# What each of the 18 positions admits. The division (3-8) is judged by form
# only: old codes keep retired county codes, so its value is never checked.
_CREDIT_ALLOWED: Final = (_AUTHORITIES, _ALPHABET_SET, *[_DIGITS] * 6, *[_ALPHABET_SET] * 10)

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"
_ID_ALLOWED: Final = (*[_DIGITS] * 17, _DIGITS | {"X"})
_EARLIEST_BIRTH_YEAR: Final = 1900

# str.upper() would turn "ß" into "SS" and the ligature "ﬀ" into "FF", so a
# non-ASCII string could upper-case into a valid code; fold ASCII only.
_ASCII_UPPER: Final = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


class InvalidIdentifier(ValueError):
    """An identifier that is not well-formed or whose check characters disagree."""

    def __init__(self, reason: Reason, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.position = position
        self.message = message


def _normalise(value: str) -> str:
    return value.strip().translate(_ASCII_UPPER)


def _require_length(value: str, expected: int) -> None:
    if len(value) != expected:
        raise InvalidIdentifier(
            "bad_length", f"bad length: expected {expected} characters, got {len(value)}"
        )


def _require_part(value: str, expected: int, what: str) -> None:
    if len(value) != expected:
        raise InvalidIdentifier(
            "bad_structure", f"{what}: expected {expected} characters, got {len(value)}"
        )


def _require_characters(value: str, allowed: tuple[frozenset[str], ...]) -> None:
    # The demo generator builds codes by the hundred thousand: answer the
    # common case in one pass at C speed, and walk only to explain a failure.
    if all(map(contains, allowed, value)):
        return
    # Left to right, so the message names the first character at fault.
    for position, (ch, admitted) in enumerate(zip(value, allowed, strict=False), start=1):
        if ch not in admitted:
            raise InvalidIdentifier(
                "bad_character", f"character {ch!r} not allowed at position {position}", position
            )


# The unchecked computations below assume length and characters already
# vetted (map() would silently stop at the shorter input); the public helpers
# and validators vet first, so a bad character never surfaces as a KeyError.
def _credit_check(first17: str) -> str:
    total = sum(map(mul, map(_CREDIT_VALUE.__getitem__, first17), _CREDIT_WEIGHTS))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def _org_check(body8: str) -> str:
    total = sum(map(mul, map(_ORG_VALUE.__getitem__, body8), _ORG_WEIGHTS))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def _id_check(first17: str) -> str:
    total = sum(map(mul, map(int, first17), _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def credit_code_check_char(first17: str) -> str:
    """Return the final (18th) check character for the first 17 characters of a credit code.

    Raises InvalidIdentifier: `bad_structure` if `first17` is not 17 characters,
    `bad_character` if one of them is outside the credit-code alphabet.
    """
    _require_part(first17, 17, "credit code without its check character")
    _require_characters(first17, (_ALPHABET_SET,) * 17)
    return _credit_check(first17)


def org_code_check_char(first8: str) -> str:
    """Return the GB 11714 check character (`0`-`9` or `X`) for an organisation code body.

    Raises InvalidIdentifier: `bad_structure` if `first8` is not 8 characters,
    `bad_character` if one is outside the credit-code alphabet (positions are
    counted within `first8`).
    """
    _require_part(first8, 8, "organisation code body")
    _require_characters(first8, (_ALPHABET_SET,) * 8)
    return _org_check(first8)


def validate_credit_code(value: str) -> str:
    """Return the normalised code (stripped, ASCII upper-cased) if it is a genuine credit code.

    Checks run in this order and the first failure is raised as InvalidIdentifier:
    `bad_length` (not 18 characters); `bad_character` (the leftmost character
    outside the alphabet, an authority outside 1-9/A/N/Y at position 1, or a
    non-digit in the division, positions 3-8); `bad_check` (position 18 disagrees
    with positions 1-17: a typo); `bad_org_check` (position 17 disagrees with the
    organisation code although the final check holds: a code built by someone
    who recomputed only the last character, so not a genuine one).
    """
    code = _normalise(value)
    _require_length(code, CREDIT_CODE_LENGTH)
    _require_characters(code, _CREDIT_ALLOWED)
    expected = _credit_check(code[:17])
    if code[17] != expected:
        raise InvalidIdentifier("bad_check", f"check character should be {expected}", 18)
    org_expected = _org_check(code[8:16])
    if code[16] != org_expected:
        raise InvalidIdentifier(
            "bad_org_check", f"organisation code check character should be {org_expected}", 17
        )
    return code


@functools.lru_cache(maxsize=4096)
def remembered_credit_code(value: str) -> str:
    """`validate_credit_code`, remembering the valid codes: the same few come
    back on nearly every line of a feed and every report request. A credit
    code is public, so remembering it is harmless (personal identifiers are
    never remembered); an invalid one raises and is not kept, so its message
    is always the validator's."""
    return validate_credit_code(value)


class UnknownEnterprise(NotFound):
    """A well-formed credit code no enterprise in the store has."""

    type_slug, title = "unknown-enterprise", "No such enterprise"


def checked_code(value: str) -> str:
    """The normalised credit code from a request, or 422 naming what is wrong with it."""
    try:
        return remembered_credit_code(value)
    except InvalidIdentifier as exc:
        raise InvalidValue(
            f"credit_code: {exc}", field="credit_code", reason=exc.reason, position=exc.position
        ) from None


def is_valid_credit_code(value: str) -> bool:
    """Return True if `validate_credit_code` would accept `value`, else False."""
    try:
        validate_credit_code(value)
    except InvalidIdentifier:
        return False
    return True


def make_credit_code(authority: str, org_type: str, division: str, org_body8: str) -> str:
    """Return a valid credit code built from its parts, with both check characters computed.

    Parts are taken as given (upper-case, no whitespace). Raises InvalidIdentifier:
    `bad_structure` if a part has the wrong length (1, 1, 6 and 8 characters),
    `bad_character` if a character is not allowed where it lands in the code
    (positions are those of the full code).
    """
    _require_part(authority, 1, "registration authority")
    _require_part(org_type, 1, "organisation type")
    _require_part(division, 6, "administrative division")
    _require_part(org_body8, 8, "organisation code body")
    first16 = authority + org_type + division + org_body8
    _require_characters(first16, _CREDIT_ALLOWED)
    first17 = first16 + _org_check(org_body8)
    return first17 + _credit_check(first17)


def division_of(code: str) -> str:
    """Return the six-digit administrative division (positions 3-8) of a credit code.

    The code is validated first (raising InvalidIdentifier as
    `validate_credit_code` does), so garbage never yields a plausible division.
    The division is returned as written, retired county codes included.
    """
    return validate_credit_code(code)[2:8]


def resident_id_check_char(first17: str) -> str:
    """Return the check character (`0`-`9` or `X`) for the first 17 digits of an ID number.

    Raises InvalidIdentifier: `bad_structure` if `first17` is not 17 characters,
    `bad_character` if one is not an ASCII digit.
    """
    _require_part(first17, 17, "resident ID number without its check character")
    _require_characters(first17, _ID_ALLOWED[:17])
    return _id_check(first17)


def _require_birth_date(number: str) -> None:
    digits = number[6:14]
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        born = None
    if born is None or not _EARLIEST_BIRTH_YEAR <= born.year <= date.today().year:
        raise InvalidIdentifier("bad_birth_date", f"birth date {digits} is not a valid date", 7)


def validate_resident_id(value: str) -> str:
    """Return the normalised resident ID number (stripped, `x` upper-cased) if it is valid.

    Checks run in this order and the first failure is raised as InvalidIdentifier:
    `bad_length` (not 18 characters); `bad_character` (the leftmost non-digit in
    positions 1-17, or a position 18 other than a digit or X); `bad_birth_date`
    (positions 7-14 are not a calendar date in a year from 1900 to this year);
    `bad_check` (position 18 disagrees with positions 1-17).
    """
    number = _normalise(value)
    _require_length(number, RESIDENT_ID_LENGTH)
    _require_characters(number, _ID_ALLOWED)
    _require_birth_date(number)
    expected = _id_check(number[:17])
    if number[17] != expected:
        raise InvalidIdentifier("bad_check", f"check character should be {expected}", 18)
    return number


def is_valid_resident_id(value: str) -> bool:
    """Return True if `validate_resident_id` would accept `value`, else False."""
    try:
        validate_resident_id(value)
    except InvalidIdentifier:
        return False
    return True
