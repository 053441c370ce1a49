"""What the server-rendered pages share (the officers' dashboard, the
enterprise portal and its consent page): their security headers, the bounded
urlencoded and multipart form readers, the CSRF comparison and the page language.

No page carries inline script or loads anything remote: the headers say so to
the browser (CSP), forbid framing (clickjacking on a page with an approve
button) and keep every page out of shared caches (they carry CSRF tokens and
who is logged in).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs

from starlette.requests import Request

from gateway.errors import BadRequest, Forbidden, PayloadTooLarge, UnsupportedMediaType

Lang = Literal["zh", "en"]
FORM_MAX_BYTES = 4096
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": _CSP.format(form_action="'self'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def page_headers(*form_targets: str) -> dict[str, str]:
    """PAGE_HEADERS whose CSP also lets a form's answer redirect to these origins
    (browsers apply `form-action` to the redirect a form submission answers)."""
    if not form_targets:
        return PAGE_HEADERS
    targets = " ".join(("'self'", *form_targets))
    return {**PAGE_HEADERS, "Content-Security-Policy": _CSP.format(form_action=targets)}


class CsrfRefused(Forbidden):
    type_slug, title = "csrf-token-invalid", "The form's CSRF token is missing or wrong"


def lang_of(value: str | None) -> Lang:
    return "en" if value == "en" else "zh"


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; an absent token on either side never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


async def read_form(
    request: Request, *, max_bytes: int = FORM_MAX_BYTES, max_fields: int = 10
) -> dict[str, str]:
    """The urlencoded form body, bounded (python-multipart is not installed).

    413 beyond `max_bytes`, 415 for another media type, 400 for a body that is
    not urlencoded UTF-8 or has more than `max_fields` fields; a field given
    twice keeps its first value."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"this form is at most {max_bytes} bytes")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # An empty POST is a form without its CSRF token (403 later), not a format error.
    if body and media_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("send the form as application/x-www-form-urlencoded")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form body is not valid urlencoded UTF-8") from None
    return {key: values[0] for key, values in fields.items()}


_BOUNDARY = re.compile(r'boundary="?([0-9A-Za-z\'()+_,./:=?-]{1,70})"?(?:;|$)')
_DISPOSITION = re.compile(rb"^content-disposition:\s*form-data(.*)$", re.IGNORECASE | re.MULTILINE)
_PARAM = re.compile(rb';\s*(name|filename)="([^"\r\n]*)"', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Upload:
    """One file part of a multipart form: the field, the name the browser gave, the bytes."""

    field: str
    file_name: str
    content: bytes


@dataclass(slots=True)
class MultipartForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)


async def read_multipart(request: Request, *, max_bytes: int, max_parts: int) -> MultipartForm:
    """A multipart/form-data body (a form with file uploads), bounded before it is read
    whole: 413 when Content-Length or the bytes received pass `max_bytes`, 415 for
    another media type, 400 for a body that is not multipart or has more than
    `max_parts` parts. Text fields are UTF-8, at most FORM_MAX_BYTES each; a field
    given twice keeps its first value; a file part without a name or bytes is
    skipped (the browser sends one for an empty file input)."""
    media = request.headers.get("content-type", "")
    found = _BOUNDARY.search(media)
    if media.split(";")[0].strip().lower() != "multipart/form-data" or found is None:
        raise UnsupportedMediaType("send the form as multipart/form-data")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"this form is at most {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"this form is at most {max_bytes} bytes")
    return _parse_multipart(bytes(body), found.group(1).encode(), max_parts)


def _parse_multipart(body: bytes, boundary: bytes, max_parts: int) -> MultipartForm:
    delimiter = b"--" + boundary
    pieces = body.split(b"\r\n" + delimiter)
    if not pieces[0].startswith(delimiter) or not pieces[-1].startswith(b"--"):
        raise BadRequest("the form body is not multipart/form-data with its boundary")
    parts = [pieces[0][len(delimiter) :], *pieces[1:-1]]
    if len(parts) > max_parts:
        raise BadRequest(f"this form has at most {max_parts} parts")
    form = MultipartForm()
    for part in parts:
        head, separator, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        disposition = _DISPOSITION.search(head)
        if not separator or disposition is None:
            raise BadRequest("a form part has no Content-Disposition: form-data header")
        params = {k.lower(): v for k, v in _PARAM.findall(disposition.group(1))}
        try:
            name = params.get(b"name", b"").decode()
            file_name = params[b"filename"].decode() if b"filename" in params else None
            if file_name is None:
                if len(content) > FORM_MAX_BYTES:
                    raise PayloadTooLarge(f"a form field is at most {FORM_MAX_BYTES} bytes")
                form.fields.setdefault(name, content.decode())
            elif file_name and content:
                form.files.append(Upload(name, file_name, content))
        except UnicodeDecodeError:
            raise BadRequest("a form field is not UTF-8") from None
    return form
