"""Reading record feeds line by line: NDJSON and CSV, UTF-8 with or without BOM.

Each physical line is decoded on its own, so one line in the wrong encoding
is rejected with its number while the rest of the file goes in.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

MAX_LINE_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class Line:
    """One input line: its fields, or why it could not be read."""

    number: int
    fields: dict[str, Any] | None
    error: str | None = None


def _decoded(
    raw_lines: Iterable[bytes], first: int = 1
) -> Iterator[tuple[int, str | None, str | None]]:
    for number, raw in enumerate(raw_lines, start=first):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if len(raw) > MAX_LINE_BYTES:
            yield number, None, f"line longer than {MAX_LINE_BYTES} bytes"
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, f"not valid UTF-8 (byte {exc.start + 1}); feeds must be UTF-8"
            continue
        yield number, text.rstrip("\r\n"), None


def read_ndjson(raw_lines: Iterable[bytes], first: int = 1) -> Iterator[Line]:
    """`first`: the number of the first of `raw_lines` when they are a slice of a feed."""
    for number, text, error in _decoded(raw_lines, first):
        if text is None:
            yield Line(number, None, error)
            continue
        if not text.strip():
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield Line(number, None, f"not valid JSON: {exc.msg}")
            continue
        if not isinstance(value, dict):
            yield Line(number, None, "each line must be a JSON object")
            continue
        yield Line(number, value)


def read_csv(raw_lines: Iterable[bytes]) -> Iterator[Line]:
    """CSV with a header row; a quoted field may span lines (numbered by its first)."""
    header: list[str] | None = None
    pending: list[str] = []
    first = 0
    for number, text, error in _decoded(raw_lines):
        if text is None:
            yield Line(number, None, error)
            continue
        if not pending:
            first = number
            if not text.strip():
                continue
        pending.append(text)
        joined = "\n".join(pending)
        if joined.count('"') % 2:
            continue  # inside a quoted field that goes on to the next line
        pending = []
        row = next(csv.reader([joined]))
        if header is None:
            header = [name.strip() for name in row]
            continue
        if len(row) != len(header):
            yield Line(first, None, f"expected {len(header)} columns, got {len(row)}")
            continue
        yield Line(first, dict(zip(header, row, strict=True)))
    if pending:
        yield Line(first, None, "unterminated quoted field at end of file")


def read_lines(raw_lines: Iterable[bytes], fmt: str) -> Iterator[Line]:
    if fmt == "csv":
        return read_csv(raw_lines)
    if fmt == "ndjson":
        return read_ndjson(raw_lines)
    raise ValueError(f"unknown format {fmt!r}: use csv or ndjson")
