"""Credit codes (GB 32100) and resident ID numbers (GB 11643): every failure named."""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import date

import pytest

from gateway.identifiers import (
    CREDIT_ALPHABET,
    InvalidIdentifier,
    credit_code_check_char,
    division_of,
    is_valid_credit_code,
    is_valid_resident_id,
    make_credit_code,
    org_code_check_char,
    resident_id_check_char,
    validate_credit_code,
    validate_resident_id,
)

# Published codes of real bodies. Their organisation codes are all digits.
REAL_CODES = ("9144030071526726XG", "914403001922038216", "91330100716105852F")
# More codes as they appear in public data next to the body's name; each
# passes both checks (a random string does so about once in 341 tries).
MORE_REAL_CODES = (
    "91110000802100433B",  # 北京百度网讯科技有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
    "911100007109250324",  # 中国移动通信集团有限公司
    "91440300708461136T",  # 腾讯科技（深圳）有限公司
    "91330000733796106P",  # 杭州海康威视数字技术股份有限公司
    # Letters in the organisation body: these check only with GB 11714's
    # A=10 … Z=35, not with the letters' places in the credit-code alphabet.
    "91310000MA1FL1MMXL",  # 中国远洋海运集团有限公司
    "91340100MA8NEH400Q",  # 合肥任也科技有限公司, organisation code MA8NEH400 on record
    # Registration authority 3 (judicial administration): a law firm.
    "31410000MD02542193",  # 河南永凡律师事务所
)
ALL_REAL_CODES = REAL_CODES + MORE_REAL_CODES

# Every Latin capital and digit, plus look-alikes and punctuation that are
# never allowed. No lower case: it normalises to the capital.
MUTATION_CHARS = string.digits + string.ascii_uppercase + "-_Ｏ０"
AUTHORITIES = "123456789ANY"

ID_EXAMPLE = "11010519491231002X"  # the example published with GB 11643
SYNTHETIC_IDS = (
    ID_EXAMPLE,
    "510104198001011236",
    "510104200002290011",  # a leap day
    "440305190001010017",  # the earliest year accepted
)


def rejection(
    value: str, validate: Callable[[str], str] = validate_credit_code
) -> InvalidIdentifier:
    with pytest.raises(InvalidIdentifier) as caught:
        validate(value)
    return caught.value


def reference_final_check(first17: str) -> str:
    # Written out from the standard, independently of the module under test.
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    total = sum(CREDIT_ALPHABET.index(ch) * w for ch, w in zip(first17, weights, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def is_calendar_birth_date(digits: str) -> bool:
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return False
    return 1900 <= born.year <= date.today().year


# --- credit codes: acceptance and normalisation -----------------------------


@pytest.mark.parametrize("code", ALL_REAL_CODES)
def test_real_codes_pass(code: str) -> None:
    assert validate_credit_code(code) == code
    assert is_valid_credit_code(code) is True


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("9144030071526726xg", "9144030071526726XG"),
        ("  91330100716105852f\n", "91330100716105852F"),
        ("\t91310000ma1fl1mmxl ", "91310000MA1FL1MMXL"),
        ("\u3000914403001922038216\u3000", "914403001922038216"),  # ideographic space
    ],
)
def test_whitespace_is_stripped_and_letters_upper_cased(raw: str, normalised: str) -> None:
    assert validate_credit_code(raw) == normalised


@pytest.mark.parametrize(
    ("raw", "shown", "position"),
    [
        ("９144030071526726XG", "'９'", 1),
        ("9144030071526726ＸG", "'Ｘ'", 17),
        ("91440300715267２6XG", "'２'", 15),
    ],
)
def test_full_width_characters_are_rejected_not_folded(raw: str, shown: str, position: int) -> None:
    error = rejection(raw)
    assert error.reason == "bad_character"
    assert error.position == position
    assert str(error) == f"character {shown} not allowed at position {position}"


def test_characters_that_upper_case_into_two_letters_are_not_folded() -> None:
    code = make_credit_code("9", "1", "510104", "FF000001")
    forged = code.replace("FF", "\ufb00")  # the ligature ﬀ
    assert forged.upper() == code  # str.upper() alone would have accepted it
    error = rejection(forged)
    assert error.reason == "bad_length"
    assert str(error) == "bad length: expected 18 characters, got 17"


# --- credit codes: every single-character mutation --------------------------


def expected_mutation_reason(mutated: str, position: int) -> str:
    ch = mutated[position - 1]
    if (
        ch not in CREDIT_ALPHABET
        or (position == 1 and ch not in AUTHORITIES)
        or (3 <= position <= 8 and ch not in string.digits)
    ):
        return "bad_character"
    if reference_final_check(mutated[:17]) != mutated[17]:
        return "bad_check"
    return "bad_org_check"


@pytest.mark.parametrize("code", ALL_REAL_CODES)
def test_every_single_character_mutation_is_rejected_for_the_right_reason(code: str) -> None:
    seen: dict[str, int] = {}
    for index in range(18):
        position = index + 1
        for ch in MUTATION_CHARS:
            if ch == code[index]:
                continue
            mutated = code[:index] + ch + code[index + 1 :]
            assert not is_valid_credit_code(mutated), mutated
            error = rejection(mutated)
            expected = expected_mutation_reason(mutated, position)
            assert error.reason == expected, (mutated, str(error))
            if expected == "bad_character":
                assert error.position == position
                assert str(error) == f"character {ch!r} not allowed at position {position}"
            else:
                assert error.position == 18
                should_be = reference_final_check(mutated[:17])
                assert str(error) == f"check character should be {should_be}"
            seen[error.reason] = seen.get(error.reason, 0) + 1
    # Computed, not assumed: each weight is coprime to 31, so no substitution
    # in positions 1-17 keeps the final check, and bad_org_check never shows.
    assert set(seen) == {"bad_character", "bad_check"}
    assert sum(seen.values()) == 18 * (len(MUTATION_CHARS) - 1)


# --- credit codes: each failure, its order and its message -------------------


@pytest.mark.parametrize("length", [0, 1, 17, 19, 36])
def test_wrong_length(length: int) -> None:
    error = rejection(("9144030071526726XG" * 2)[:length])
    assert error.reason == "bad_length"
    assert error.position is None
    assert str(error) == f"bad length: expected 18 characters, got {length}"


def test_length_is_counted_after_stripping() -> None:
    assert str(rejection("   ")) == "bad length: expected 18 characters, got 0"
    assert str(rejection(" 9144030071526726X ")) == "bad length: expected 18 characters, got 17"


ORG_FORGERIES = [
    (code, wrong) for code in REAL_CODES for wrong in "0123456789XA" if wrong != code[16]
]


@pytest.mark.parametrize(("code", "wrong"), ORG_FORGERIES)
def test_correct_final_check_with_wrong_organisation_check_is_not_genuine(
    code: str, wrong: str
) -> None:
    first17 = code[:16] + wrong
    forged = first17 + reference_final_check(first17)
    assert credit_code_check_char(first17) == forged[17]  # the final check holds
    error = rejection(forged)
    assert error.reason == "bad_org_check"
    assert error.position == 17
    assert str(error) == f"organisation code check character should be {code[16]}"
    assert is_valid_credit_code(forged) is False


def test_one_example_of_each_message() -> None:
    assert str(rejection("9144030071526726X")) == "bad length: expected 18 characters, got 17"
    assert str(rejection("9144A30071526726XG")) == "character 'A' not allowed at position 5"
    assert str(rejection("B144030071526726XG")) == "character 'B' not allowed at position 1"
    assert str(rejection("9144030071526726XA")) == "check character should be G"
    assert str(rejection("91440300715267261R")) == "organisation code check character should be X"


def test_failure_attributes() -> None:
    error = rejection("9144030071526726XA")
    assert isinstance(error, ValueError)
    assert (error.reason, error.position, error.message) == (
        "bad_check",
        18,
        "check character should be G",
    )


@pytest.mark.parametrize(
    ("value", "reason", "position"),
    [
        ("9I44030071526726XGX", "bad_length", None),  # length before characters
        ("91I4030071526O26XG", "bad_character", 3),  # leftmost character first
        ("9144030071526726IA", "bad_character", 17),  # characters before the check
        ("9144030071526726XO", "bad_character", 18),
        ("9144030071526726SG", "bad_character", 17),
        ("9144030071526726AG", "bad_check", 18),  # final check before organisation check
    ],
)
def test_checks_run_in_order(value: str, reason: str, position: int | None) -> None:
    error = rejection(value)
    assert (error.reason, error.position) == (reason, position)


@pytest.mark.parametrize("authority", list(AUTHORITIES))
def test_every_accepted_registration_authority(authority: str) -> None:
    code = make_credit_code(authority, "1", "510104", "00000001")
    assert validate_credit_code(code) == code


@pytest.mark.parametrize("authority", ["0", "B", "C", "X", "W"])
def test_other_registration_authorities_are_refused(authority: str) -> None:
    first17 = authority + "144030071526726X"
    error = rejection(first17 + reference_final_check(first17))
    assert error.reason == "bad_character"
    assert error.position == 1


# --- building codes ----------------------------------------------------------


@pytest.mark.parametrize("code", ALL_REAL_CODES)
def test_make_credit_code_rebuilds_real_codes_from_their_parts(code: str) -> None:
    assert make_credit_code(code[0], code[1], code[2:8], code[8:16]) == code


@pytest.mark.parametrize(
    "division", ["510104", "510100", "510124", "510132", "440300", "000000", "999999"]
)
@pytest.mark.parametrize("org_type", ["1", "2", "3", "9", "A", "Y"])
def test_made_codes_validate_and_keep_their_division(division: str, org_type: str) -> None:
    for body in ("00000001", "MA6CXY12", "YYYYYYYY", "0000000A", "WXY12345", "MA1FL1MM"):
        code = make_credit_code("9", org_type, division, body)
        assert validate_credit_code(code) == code
        assert division_of(code) == division
        assert code[16] == org_code_check_char(body)


def test_make_credit_code_known_value() -> None:
    assert make_credit_code("9", "1", "510124", "00000001") == "915101240000000194"
    assert make_credit_code("1", "1", "510100", "00000000") == "11510100000000000N"


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (("91", "1", "510104", "00000001"), "registration authority: expected 1 characters, got 2"),
        (("9", "", "510104", "00000001"), "organisation type: expected 1 characters, got 0"),
        (("9", "1", "5101", "00000001"), "administrative division: expected 6 characters, got 4"),
        (("9", "1", "510104", "0000001"), "organisation code body: expected 8 characters, got 7"),
    ],
)
def test_make_credit_code_refuses_misshapen_parts(
    parts: tuple[str, str, str, str], message: str
) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        make_credit_code(*parts)
    assert caught.value.reason == "bad_structure"
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("parts", "position", "ch"),
    [
        (("B", "1", "510104", "00000001"), 1, "B"),
        (("9", "I", "510104", "00000001"), 2, "I"),
        (("9", "1", "51010A", "00000001"), 8, "A"),
        (("9", "1", "510104", "0000O001"), 13, "O"),
        (("9", "1", "510104", "0000000z"), 16, "z"),
    ],
)
def test_make_credit_code_refuses_characters_by_their_place_in_the_code(
    parts: tuple[str, str, str, str], position: int, ch: str
) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        make_credit_code(*parts)
    assert caught.value.reason == "bad_character"
    assert caught.value.position == position
    assert str(caught.value) == f"character {ch!r} not allowed at position {position}"


# --- check-character helpers and division ------------------------------------


@pytest.mark.parametrize("code", ALL_REAL_CODES)
def test_check_character_helpers_agree_with_real_codes(code: str) -> None:
    assert credit_code_check_char(code[:17]) == code[17]
    assert org_code_check_char(code[8:16]) == code[16]


@pytest.mark.parametrize(
    ("body", "check"),
    [("71526726", "X"), ("19220382", "1"), ("MA1FL1MM", "X"), ("MA8NEH40", "0"), ("00000000", "0")],
)
def test_org_code_check_values(body: str, check: str) -> None:
    assert org_code_check_char(body) == check


@pytest.mark.parametrize(
    ("call", "reason", "position"),
    [
        (lambda: credit_code_check_char("9144030071526726"), "bad_structure", None),
        (lambda: credit_code_check_char("9144030071526726I"), "bad_character", 17),
        (lambda: org_code_check_char("7152672"), "bad_structure", None),
        (lambda: org_code_check_char("7152672O"), "bad_character", 8),
        (lambda: resident_id_check_char("1101051949123100"), "bad_structure", None),
        (lambda: resident_id_check_char("1101051949123100X"), "bad_character", 17),
    ],
)
def test_check_character_helpers_refuse_bad_input(
    call: Callable[[], str], reason: str, position: int | None
) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        call()
    assert (caught.value.reason, caught.value.position) == (reason, position)


def test_division_of() -> None:
    assert division_of("9144030071526726XG") == "440300"
    assert division_of(" 91330100716105852f ") == "330100"
    with pytest.raises(InvalidIdentifier) as caught:
        division_of("9144030071526726XA")
    assert caught.value.reason == "bad_check"


# --- resident ID numbers -----------------------------------------------------


@pytest.mark.parametrize("number", SYNTHETIC_IDS)
def test_resident_ids_pass(number: str) -> None:
    assert validate_resident_id(number) == number
    assert is_valid_resident_id(number) is True
    assert resident_id_check_char(number[:17]) == number[17]


def test_resident_id_lower_case_x_and_whitespace_are_normalised() -> None:
    assert validate_resident_id(" 11010519491231002x\n") == ID_EXAMPLE


def expected_id_mutation_reason(mutated: str, position: int) -> str:
    ch = mutated[position - 1]
    if ch not in string.digits and not (position == 18 and ch == "X"):
        return "bad_character"
    if not is_calendar_birth_date(mutated[6:14]):
        return "bad_birth_date"
    return "bad_check"


@pytest.mark.parametrize("number", SYNTHETIC_IDS)
def test_every_single_character_mutation_of_a_resident_id_is_rejected(number: str) -> None:
    seen: set[str] = set()
    for index in range(18):
        position = index + 1
        for ch in string.digits + "XA-０":
            if ch == number[index]:
                continue
            mutated = number[:index] + ch + number[index + 1 :]
            assert not is_valid_resident_id(mutated), mutated
            error = rejection(mutated, validate_resident_id)
            expected = expected_id_mutation_reason(mutated, position)
            assert error.reason == expected, (mutated, str(error))
            assert error.position == {"bad_character": position, "bad_birth_date": 7}.get(
                expected, 18
            )
            seen.add(error.reason)
    # Weights are all non-zero modulo the prime 11: no digit swap keeps the check.
    assert seen == {"bad_character", "bad_birth_date", "bad_check"}


@pytest.mark.parametrize(
    "birth",
    [
        "19491331",  # no 13th month
        "19490229",  # 1949 was not a leap year
        "19000229",  # nor was 1900
        "19490431",  # April has 30 days
        "18991231",  # before 1900
        f"{date.today().year + 1}0101",  # a future year
        "00000000",
    ],
)
def test_impossible_birth_dates(birth: str) -> None:
    first17 = "110105" + birth + "002"
    error = rejection(first17 + resident_id_check_char(first17), validate_resident_id)
    assert error.reason == "bad_birth_date"
    assert error.position == 7
    assert str(error) == f"birth date {birth} is not a valid date"


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        ("1101051949123100", "bad_length", "bad length: expected 18 characters, got 16"),
        ("11010519491231002XX", "bad_length", "bad length: expected 18 characters, got 19"),
        ("1101051949A231002X", "bad_character", "character 'A' not allowed at position 11"),
        ("11010519491231002Y", "bad_character", "character 'Y' not allowed at position 18"),
        ("11010519491231００2X", "bad_character", "character '０' not allowed at position 15"),
        ("110105194912310021", "bad_check", "check character should be X"),
        ("11010519491331002X", "bad_birth_date", "birth date 19491331 is not a valid date"),
    ],
)
def test_resident_id_failures_are_named(value: str, reason: str, message: str) -> None:
    error = rejection(value, validate_resident_id)
    assert error.reason == reason
    assert str(error) == message


def test_resident_id_checks_run_in_order() -> None:
    # A bad date outranks a bad check character; a bad character outranks both.
    assert rejection("110105194913310021", validate_resident_id).reason == "bad_birth_date"
    assert rejection("1101051949133100AX", validate_resident_id).reason == "bad_character"


@pytest.mark.parametrize(
    ("first17", "check"),
    [("11010519491231002", "X"), ("51010419800101123", "6"), ("44030519000101001", "7")],
)
def test_resident_id_check_char_values(first17: str, check: str) -> None:
    assert resident_id_check_char(first17) == check
