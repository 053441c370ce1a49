"""Structured JSON logs on stderr, each line carrying the request id.

Nothing personal or secret is logged: paths are redacted where they are
logged (`redact`), query strings and headers never are, libraries that echo
statement parameters or URLs are held above DEBUG/INFO, and every line is
redacted once more as it is written.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed in `extra=` and is logged.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

# A resident ID number (GB 11643: region, birth date, sequence, check character),
# a mainland mobile number, a compact JWS/JWT: never in a log line.
_SENSITIVE = re.compile(
    r"(?<![0-9A-Za-z])(?:\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
    r"|1[3-9]\d{9})(?![0-9A-Za-z])"
    r"|eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
)
# Libraries that log SQL parameters (aiosqlite at DEBUG) or full URLs with
# their query strings (httpx at INFO).
_QUIETER = {"aiosqlite": logging.INFO, "httpx": logging.WARNING, "httpcore": logging.INFO}


# ASCII digits to "0", letters to "a", anything else to " ": the shapes a match
# needs are then plain substrings (see `redact`).
_SHAPES = bytes(
    48 if 48 <= i <= 57 else 97 if 65 <= i <= 90 or 97 <= i <= 122 else 32 for i in range(256)
)
_MOBILE_SHAPE = b" " + b"0" * 11 + b" "
_ID_SHAPES = (b" " + b"0" * 18 + b" ", b" " + b"0" * 17 + b"a ")


def redact(text: str) -> str:
    """`text` with ID numbers, mobile numbers and JWTs replaced by `[redacted]`."""
    # Nearly every line holds none, and the pattern's scan costs every line (one
    # a request) several microseconds. In ASCII text a match needs "eyJ", or a
    # run of exactly 11 digits, or of 17 digits and a digit or letter, with no
    # letter or digit either side; finding none of those shapes is cheap. Other
    # text (`\d` also matches non-ASCII digits) always gets the scan.
    if text.isascii():
        shapes = b" %s " % text.encode("ascii").translate(_SHAPES)
        if (
            "eyJ" not in text
            and _MOBILE_SHAPE not in shapes
            and _ID_SHAPES[0] not in shapes
            and _ID_SHAPES[1] not in shapes
        ):
            return text
    return _SENSITIVE.sub("[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(entry, default=str).decode())


def configure_logging(level: str = "INFO") -> None:
    # Our lines carry no source location, thread or process: the Logging HOWTO's
    # switches spare every record their lookup (a stack walk for the caller),
    # which the access log pays once a request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours, in another format.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name, floor in _QUIETER.items():
        logging.getLogger(name).setLevel(max(floor, logging.getLevelName(level)))
