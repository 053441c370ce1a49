"""A generated chunk as PostgreSQL COPY text, one payload per table.

COPY's text format: tab-separated columns, `\\N` for null, and a backslash,
tab, newline or carriage return inside a value escaped with a backslash. The
generator's own strings never hold those characters, so a line is checked
once and escaped only when it must be (a JSON payload may hold a backslash).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from xyd_demo.generate import Chunk

_SPECIAL = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def escape(value: Any) -> str:
    """One value in COPY text form."""
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, bytes):
        value = value.decode()
    elif isinstance(value, list | dict):
        value = orjson.dumps(value).decode()
    elif not isinstance(value, str):
        return str(value)
    return str(value).translate(_SPECIAL)


def _careful(row: tuple[Any, ...], suffix: str) -> str:
    return "\t".join(map(escape, row)) + suffix


def _line(row: tuple[Any, ...], suffix: str) -> str:
    # Fast path for the usual str/int/None rows; anything else, or a value
    # holding a special character, takes the careful path.
    values = []
    for value in row:
        kind = value.__class__
        if kind is str:
            values.append(value)
        elif value is None:
            values.append(_NULL)
        elif kind is int:
            values.append(str(value))
        else:
            return _careful(row, suffix)
    line = "\t".join(values)
    if "\\" in line or "\n" in line or "\r" in line or line.count("\t") != len(row) - 1:
        return _careful(row, suffix)
    return line + suffix


def lines(rows: Iterable[tuple[Any, ...]], stamps: tuple[str, ...]) -> bytes:
    """Rows in COPY text form, each followed by the timestamp columns `stamps`."""
    suffix = "".join("\t" + stamp for stamp in stamps) + "\n"
    return "".join([_line(row, suffix) for row in rows]).encode()


def versions(rows: list[tuple[Any, ...]], received_at: str) -> bytes:
    """record_versions rows: the JSON payload is already bytes, joined without decoding."""
    out = []
    tail = f"\t{received_at}\n".encode()
    for record_id, version, digest, payload in rows:
        if b"\\" in payload:
            payload = payload.replace(b"\\", b"\\\\")
        out.append(b"%d\t%d\t%s\t%s%s" % (record_id, version, digest.encode(), payload, tail))
    return b"".join(out)


def chunk_payloads(chunk: Chunk, now: str) -> dict[str, bytes]:
    """The COPY payload for each table of the credit store."""
    return {
        "enterprises": lines(chunk.enterprises, (now, now)),
        "records": lines(chunk.records, (now, now)),
        "record_versions": versions(chunk.versions, now),
        "penalty_details": lines(chunk.penalties, ()),
        "license_details": lines(chunk.licenses, ()),
    }
