"""Evidence files for a repair application: PDF, JPEG or PNG, known by their bytes.

The media type is sniffed from the content (magic bytes at the start and the
format's end marker near the end), never taken from a file name or a declared
type, so an HTML page named `.pdf` is refused. Sizes are bounded before
anything is read whole: `read_bounded` stops a stream at its limit, and
`decode_base64` refuses text longer than the limit's base64 before decoding.

Errors: `EvidenceTypeRefused` (415) for content that is not one of the three
types, `EvidenceTooLarge` (413) over a size bound, `EvidenceInvalid` (422) for
bad base64, an empty file or too many files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.errors import InvalidValue, PayloadTooLarge, UnsupportedMediaType

PDF, JPEG, PNG = "application/pdf", "image/jpeg", "image/png"
EXTENSIONS = {PDF: "pdf", JPEG: "jpg", PNG: "png"}
NAME_MAX_CHARS = 200
# Where a format's end marker must be: writers append a newline or padding at most.
_TAIL_BYTES = 1024
_PDF_HEAD = re.compile(rb"%PDF-[12]\.[0-9]")
# Markup a browser's sniffer would render: refused in any evidence, polyglots included.
_MARKUP = re.compile(rb"<\s*(?:!doctype|html|script|body|svg|iframe)", re.IGNORECASE)


class EvidenceTypeRefused(UnsupportedMediaType):
    type_slug, title = "evidence-type-refused", "Evidence must be a PDF, JPEG or PNG file"


class EvidenceTooLarge(PayloadTooLarge):
    type_slug, title = "evidence-too-large", "Evidence file too large"


class EvidenceInvalid(InvalidValue):
    type_slug, title = "evidence-invalid", "Evidence refused"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One accepted file: its name as given (cleaned, for display only), sniffed type,
    size, SHA-256 (hex) and bytes."""

    file_name: str
    media_type: str
    size: int
    sha256: str
    content: bytes


def sniff(data: bytes) -> str | None:
    """The media type the bytes are, of PDF, JPEG and PNG; None for anything else."""
    head, tail = data[:512], data[-_TAIL_BYTES:]
    if _MARKUP.search(head):
        return None
    if _PDF_HEAD.match(data) and b"%%EOF" in tail:
        return PDF
    if data.startswith(b"\xff\xd8\xff") and b"\xff\xd9" in data[-32:]:
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and b"IEND" in data[-32:]:
        return PNG
    return None


def clean_name(name: str) -> str:
    """The last path segment, without control or format characters, at most 200 characters."""
    last = re.split(r"[/\\]", name)[-1]
    kept = "".join(c for c in last if unicodedata.category(c)[0] != "C").strip()
    return kept[:NAME_MAX_CHARS] or "evidence"


def check_file(name: str, data: bytes, max_bytes: int) -> Evidence:
    """One file accepted, or refused with why (413, 415 or 422)."""
    if len(data) > max_bytes:
        raise EvidenceTooLarge(f"{clean_name(name)}: over {max_bytes} bytes")
    if not data:
        raise EvidenceInvalid(f"{clean_name(name)}: the file is empty")
    media_type = sniff(data)
    if media_type is None:
        raise EvidenceTypeRefused(
            f"{clean_name(name)}: the content is not a PDF, JPEG or PNG file "
            "(the file name and declared type are not looked at)"
        )
    digest = hashlib.sha256(data).hexdigest()
    return Evidence(clean_name(name), media_type, len(data), digest, data)


def check_count(count: int, max_files: int) -> None:
    """At least one file and at most `max_files` (422)."""
    if not 1 <= count <= max_files:
        raise EvidenceInvalid(f"evidence: 1 to {max_files} files, {count} given")


def check_total(files: list[Evidence], max_total: int) -> None:
    if sum(f.size for f in files) > max_total:
        raise EvidenceTooLarge(f"evidence: over {max_total} bytes in all")


def check_all(
    named: list[tuple[str, bytes]], max_bytes: int, max_files: int, max_total: int
) -> list[Evidence]:
    """Uploaded files (name as given, bytes): the count, then each file, then all together."""
    check_count(len(named), max_files)
    files = [check_file(name, data, max_bytes) for name, data in named]
    check_total(files, max_total)
    return files


def base64_limit(max_bytes: int) -> int:
    """The longest base64 text (padded) of at most `max_bytes` bytes."""
    return -(-max_bytes // 3) * 4


def decode_base64(name: str, text: str, max_bytes: int) -> bytes:
    """Standard base64 (padded, no line breaks) decoded; too long is 413 before decoding."""
    if len(text) > base64_limit(max_bytes):
        raise EvidenceTooLarge(f"{clean_name(name)}: over {max_bytes} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EvidenceInvalid(f"{clean_name(name)}: content_base64 is not valid base64") from None


async def read_bounded(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """A body read chunk by chunk, refused (413) as soon as it passes `limit` bytes."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
    return bytes(body)
