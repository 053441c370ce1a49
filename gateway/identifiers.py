"""Unified social credit codes (GB 32100-2015) and resident ID numbers (GB 11643).

Validation raises `InvalidIdentifier` whose `reason` is a stable code
(`bad_length`, `bad_character`, `bad_structure`, `bad_org_check`, `bad_check`,
`bad_birth_date`), `position` the 1-based character at fault, and whose message
says what is wrong in words a data clerk can act on.
"""

from __future__ import annotations

import re
from datetime import date

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE = {ch: i for i, ch in enumerate(CREDIT_ALPHABET)}
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11714 organisation code: digits keep their value, letters A=10 … Z=35.
_ORG_VALUE = {ch: int(ch, 36) for ch in CREDIT_ALPHABET}
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_AUTHORITIES = frozenset("123456789ANY")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


class InvalidIdentifier(ValueError):
    def __init__(self, reason: str, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.position = position


def credit_code_check_char(first17: str) -> str:
    """The final check character for the first 17 characters of a credit code."""
    total = sum(_CREDIT_VALUE[ch] * w for ch, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """The GB 11714 check character for an organisation code's 8-character body."""
    total = sum(_ORG_VALUE[ch] * w for ch, w in zip(first8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def _bad_char(ch: str, position: int) -> InvalidIdentifier:
    return InvalidIdentifier(
        "bad_character", f"character {ch!r} not allowed at position {position}", position
    )


_WELL_FORMED = re.compile(r"[1-9ANY][0-9A-HJ-NP-RTUW-Y][0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}")


def validate_credit_code(value: str) -> str:
    """Return the normalised code (trimmed, upper-case) or raise InvalidIdentifier."""
    code = value.strip().upper()
    # Ingestion checks two codes a line: one regex for the form, and the
    # character-by-character walk only to explain a failure.
    if not _WELL_FORMED.fullmatch(code):
        _explain_malformed(code)
    expected = credit_code_check_char(code[:17])
    if code[17] != expected:
        raise InvalidIdentifier("bad_check", f"check character should be {expected}", 18)
    org_expected = org_code_check_char(code[8:16])
    if code[16] != org_expected:
        raise InvalidIdentifier(
            "bad_org_check", f"organisation code check character should be {org_expected}", 17
        )
    return code


def _explain_malformed(code: str) -> None:
    if len(code) != 18:
        raise InvalidIdentifier(
            "bad_length", f"bad length: expected 18 characters, got {len(code)}"
        )
    for index, ch in enumerate(code):
        position = index + 1
        if ch not in _CREDIT_VALUE:
            raise _bad_char(ch, position)
        if position == 1 and ch not in _AUTHORITIES:
            raise _bad_char(ch, position)
        # The division is six digits; its value is never judged (old codes keep
        # retired county codes), only its form.
        if 3 <= position <= 8 and not ch.isdigit():
            raise _bad_char(ch, position)
    raise AssertionError(f"{code!r} fails the pattern but no character was found at fault")


def is_valid_credit_code(value: str) -> bool:
    try:
        validate_credit_code(value)
    except InvalidIdentifier:
        return False
    return True


def make_credit_code(authority: str, org_type: str, division: str, org_body8: str) -> str:
    """Build a valid code from its parts, computing both check characters."""
    first16 = authority + org_type + division + org_body8
    first17 = first16 + org_code_check_char(org_body8)
    return first17 + credit_code_check_char(first17)


def division_of(code: str) -> str:
    return code[2:8]


def resident_id_check_char(first17: str) -> str:
    total = sum(int(ch) * w for ch, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def validate_resident_id(value: str) -> str:
    """Return the normalised ID number (upper-case X) or raise InvalidIdentifier."""
    number = value.strip().upper()
    if len(number) != 18:
        raise InvalidIdentifier(
            "bad_length", f"bad length: expected 18 characters, got {len(number)}"
        )
    for index, ch in enumerate(number):
        if not (ch.isascii() and ch.isdigit()) and not (index == 17 and ch == "X"):
            raise _bad_char(ch, index + 1)
    birth = number[6:14]
    try:
        born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        born = None
    if born is None or not 1900 <= born.year <= date.today().year:
        raise InvalidIdentifier("bad_birth_date", f"birth date {birth} is not a valid date", 7)
    expected = resident_id_check_char(number[:17])
    if number[17] != expected:
        raise InvalidIdentifier("bad_check", f"check character should be {expected}", 18)
    return number


def is_valid_resident_id(value: str) -> bool:
    try:
        validate_resident_id(value)
    except InvalidIdentifier:
        return False
    return True
