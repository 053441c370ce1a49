"""Log redaction: what it hides, and that its shortcut never changes the answer."""

from __future__ import annotations

import random

import pytest

from gateway.logs import _SENSITIVE, redact

ID_NUMBER = "510104198001011234"
MOBILE = "13812345678"
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJiYW5rIn0.c2ln"


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        (f"/v1/people/{ID_NUMBER}", ID_NUMBER),
        (f"call {MOBILE} now", MOBILE),
        (f"Bearer {JWT}", JWT),
        (f"id={ID_NUMBER[:-1]}X;", ID_NUMBER[:-1] + "X"),
        # Not ASCII text: no shortcut, the pattern scans it.
        (f"电话{MOBILE}", MOBILE),
    ],
)
def test_personal_numbers_and_tokens_are_hidden(text: str, hidden: str) -> None:
    assert hidden not in redact(text)
    assert "[redacted]" in redact(text)


def test_credit_codes_and_request_ids_stay() -> None:
    line = '{"path":"/v1/enterprises/91510100MA61R8XX1B/credit-report","request_id":"e2a4"}'
    assert redact(line) == line


def test_the_shortcut_agrees_with_the_pattern_on_random_lines() -> None:
    rng = random.Random(11)
    alphabet = "0123456789" * 4 + 'abcXx-_./ :"{}eyJ' + "数据"
    pieces = [ID_NUMBER, MOBILE, JWT, "91510100MA61R8XX1B", "2026-11-27T13:32:09"]
    for _ in range(20000):
        parts = [
            rng.choice(pieces)
            if rng.random() < 0.2
            else "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30)))
            for _ in range(rng.randrange(1, 8))
        ]
        text = "".join(parts)
        assert redact(text) == _SENSITIVE.sub("[redacted]", text), text
