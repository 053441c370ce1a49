"""OWASP API4: no regular expression on untrusted input backtracks catastrophically.

Every module-level pattern in gateway/ and adapters/ (the demo kit's simulators
are not in them: they only read our own output, and production has none) is run
over hostile inputs that trigger the known shapes: nested or overlapping
quantifiers, lazy scans to the end, and many overlapping starts (findall/sub
rescanning the rest from each one). Each must finish in well under a second at
the size the gateway accepts. Field
patterns in pydantic models run on pydantic-core's Rust regex engine, which
is linear by construction, so they are not listed here.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import re
import time
from typing import Any

import adapters
import gateway
from adapters.nongdaitong import wire as nongdaitong

SIZE = 64 * 1024
# CPU time of this thread, not wall time: the suite runs beside other workers and
# servers, and a busy machine must not pass for a slow pattern.
PER_SCAN_S = 0.5
# Patterns that would be slow over many starts, and the guard that leaves them one.
GUARDED = {
    # locate() searches for it only once _BODY_TAGS has counted exactly one `<Body`.
    "adapters.nongdaitong.wire._BODY": "one start",
}


def _patterns() -> dict[str, re.Pattern[Any]]:
    found: dict[str, re.Pattern[Any]] = {}
    for package in (gateway, adapters):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.ispkg:
                continue
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if isinstance(value, re.Pattern):
                    found[f"{info.name}.{name}"] = value
                # Patterns kept as strings and used with re.fullmatch (nongdaitong's Fields).
                elif (
                    isinstance(value, str)
                    and name.isupper()
                    and name.startswith("_")
                    and any(c in value for c in "[{\\")
                    and not value.startswith(("SELECT", "<"))
                ):
                    with contextlib.suppress(re.error):
                        found[f"{info.name}.{name}"] = re.compile(value)
    return found


def _fill(unit: str, size: int = SIZE) -> str:
    return unit * (size // len(unit))


TEXT_INPUTS = [
    _fill("a"), _fill("1"), _fill(" "), _fill("-"), _fill("A1-"), _fill("2024-01-"),
    _fill("2024年1月"), _fill("\x00"), _fill("a.") + "!", _fill("1") + "X!", _fill("\t\n"),
    _fill("<a "), _fill(":a"), _fill("9144030071526726X"),
]  # fmt: skip
BYTE_INPUTS = [
    _fill("<IdNo><![CDATA["), _fill("<IdNo "), _fill("<Name "), _fill("<Name><![CDATA["),
    _fill("<Body "), _fill("<Body>"), _fill("</Body "), _fill("<Sign>"), _fill("<Sign>AAAA"),
    _fill("<MsgId>") , _fill("<MsgId> a"), _fill("encoding="), _fill("1"), _fill("<"),
    "<?xml " + _fill(" encoding ="), "<IdNo>" + _fill("]]"), _fill("12345678901234567"),
]  # fmt: skip


def test_the_audit_finds_the_patterns_it_is_about() -> None:
    found = _patterns()
    assert len(found) >= 30
    for name in ("_ID_ELEMENT", "_NAME_ELEMENT", "_ID_LIKE", "_BODY", "_SIGN", "_DECLARED"):
        assert f"adapters.nongdaitong.wire.{name}" in found


def _scan_time(pattern: re.Pattern[Any], subject: Any) -> float:
    started = time.thread_time()
    list(pattern.finditer(subject))  # every match found, as a scan would
    pattern.fullmatch(subject)
    return time.thread_time() - started


def test_no_pattern_backtracks_catastrophically() -> None:
    slow = []
    for name, pattern in _patterns().items():
        if name in GUARDED:
            continue
        inputs = BYTE_INPUTS if isinstance(pattern.pattern, bytes) else TEXT_INPUTS
        for text in inputs:
            subject: Any = text.encode("utf-8") if isinstance(pattern.pattern, bytes) else text
            # The best of three: a busy machine can stretch one scan's CPU time
            # (shared caches, steal), but backtracking is slow every time.
            took = _scan_time(pattern, subject)
            if took > PER_SCAN_S:
                took = min(took, _scan_time(pattern, subject), _scan_time(pattern, subject))
            if took > PER_SCAN_S:
                slow.append((name, text[:20], round(took, 2)))
    assert slow == []


def test_guarded_patterns_are_fast_behind_their_guard() -> None:
    for unit in (b"<Body>", b"<Body ", b"<Body>" + b"a" * 1000):
        raw = unit * (nongdaitong.MAX_BODY_BYTES // len(unit))
        started = time.thread_time()
        with contextlib.suppress(nongdaitong.Refusal):
            nongdaitong.locate(raw)
        assert time.thread_time() - started < PER_SCAN_S
    one = b"<Body>" + b"a" * nongdaitong.MAX_BODY_BYTES  # one start, never closed
    started = time.thread_time()
    assert nongdaitong._BODY.search(one) is None
    assert time.thread_time() - started < PER_SCAN_S


def test_dead_letter_masking_is_linear_at_the_full_message_size() -> None:
    """`redact` runs on the event loop for signed but invalid 农贷通 messages; it
    once took 78 s on 256 KiB of `<IdNo><![CDATA[` (a lazy scan from each start)."""
    for unit in (b"<IdNo><![CDATA[", b"<IdNo ", b"<Name><![CDATA[", b"<Name "):
        raw = unit * (nongdaitong.MAX_BODY_BYTES // len(unit))
        started = time.thread_time()
        nongdaitong.redact(raw)
        assert time.thread_time() - started < 1, unit
    # Still masks what it did: an unclosed or long CDATA is masked up to the next tag.
    unclosed = b"<Type>person</Type><Name><![CDATA[\xd5\xc5\xc8\xfd</Name><IdNo>510104198001011234"
    masked = nongdaitong.redact(unclosed)
    assert b"\xd5\xc5\xc8\xfd" not in masked
    assert b"5101041980" not in masked
