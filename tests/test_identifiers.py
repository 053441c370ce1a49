"""Credit codes (GB 32100) and resident ID numbers (GB 11643): every failure named."""

from __future__ import annotations

import pytest

from gateway.identifiers import (
    CREDIT_ALPHABET,
    InvalidIdentifier,
    credit_code_check_char,
    division_of,
    is_valid_credit_code,
    make_credit_code,
    org_code_check_char,
    resident_id_check_char,
    validate_credit_code,
    validate_resident_id,
)

REAL_CODES = ("9144030071526726XG", "914403001922038216", "91330100716105852F")
ALL_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-Ｏ"


def reason_of(value: str, validate=validate_credit_code) -> InvalidIdentifier:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidIdentifier) as caught:
        validate(value)
    return caught.value


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_published_codes_pass(code: str) -> None:
    assert validate_credit_code(code) == code
    assert validate_credit_code(f"  {code.lower()} ") == code


@pytest.mark.parametrize("code", REAL_CODES)
def test_every_single_character_mutation_is_rejected_for_the_right_reason(code: str) -> None:
    seen: dict[str, int] = {}
    for index in range(18):
        for ch in ALL_CHARS:
            if ch == code[index]:
                continue
            mutated = code[:index] + ch + code[index + 1 :]
            error = reason_of(mutated)
            position = index + 1
            not_allowed = (
                ch not in CREDIT_ALPHABET
                or (position == 1 and ch not in "123456789ANY")
                or (3 <= position <= 8 and not ch.isdigit())
            )
            expected = "bad_character" if not_allowed else "bad_check"
            assert error.reason == expected, (mutated, error)
            if expected == "bad_character":
                assert error.position == position
                assert str(error) == f"character {ch!r} not allowed at position {position}"
            else:
                assert error.position == 18
            seen[error.reason] = seen.get(error.reason, 0) + 1
    # Weights are coprime to 31: one substitution can never keep the final check.
    assert set(seen) == {"bad_character", "bad_check"}


@pytest.mark.parametrize("length", [0, 17, 19])
def test_wrong_length(length: str) -> None:
    error = reason_of(("9" * 30)[:length])
    assert error.reason == "bad_length"
    assert str(error) == f"bad length: expected 18 characters, got {length}"


def test_messages_name_the_expected_check_character() -> None:
    assert str(reason_of("9144030071526726XA")) == "check character should be G"


def test_final_check_right_but_organisation_check_wrong_is_not_genuine() -> None:
    real = REAL_CODES[0]
    wrong_org = "1" if real[16] != "1" else "2"
    first17 = real[:16] + wrong_org
    forged = first17 + credit_code_check_char(first17)
    error = reason_of(forged)
    assert error.reason == "bad_org_check"
    assert error.position == 17
    assert str(error) == f"organisation code check character should be {real[16]}"


def test_org_code_check_matches_real_codes() -> None:
    for code in REAL_CODES:
        assert org_code_check_char(code[8:16]) == code[16]


@pytest.mark.parametrize("division", ["510104", "510100", "510124", "510132", "440300"])
def test_made_codes_validate_and_keep_their_division(division: str) -> None:
    for body in ("00000001", "MA6CXY12", "7152672X"[:8], "ABCDEFGH"):
        body = body.replace("I", "1").replace("O", "0")
        if any(ch not in CREDIT_ALPHABET for ch in body):
            continue
        code = make_credit_code("9", "1", division, body)
        assert validate_credit_code(code) == code
        assert division_of(code) == division
    assert is_valid_credit_code(make_credit_code("9", "1", division, "00000001"))


def test_resident_id_valid_and_lowercase_x() -> None:
    assert validate_resident_id("11010519491231002X") == "11010519491231002X"
    assert validate_resident_id(" 11010519491231002x ") == "11010519491231002X"
    first17 = "51010419800101123"
    assert resident_id_check_char(first17) in "0123456789X"


def test_every_single_digit_mutation_of_a_resident_id_is_rejected() -> None:
    valid = "11010519491231002X"
    for index in range(18):
        for ch in "0123456789X":
            if ch == valid[index]:
                continue
            mutated = valid[:index] + ch + valid[index + 1 :]
            error = reason_of(mutated, validate_resident_id)
            if ch == "X" and index < 17:
                assert error.reason == "bad_character" and error.position == index + 1
            else:
                assert error.reason in ("bad_check", "bad_birth_date"), mutated


def test_resident_id_failures_are_named() -> None:
    assert str(reason_of("1101051949123100", validate_resident_id)) == (
        "bad length: expected 18 characters, got 16"
    )
    assert str(reason_of("11010519491331002X", validate_resident_id)) == (
        "birth date 19491331 is not a valid date"
    )
    assert str(reason_of("110105194912310021", validate_resident_id)) == (
        "check character should be X"
    )
    assert str(reason_of("1101051949A23100" + "2X", validate_resident_id)) == (
        "character 'A' not allowed at position 11"
    )
