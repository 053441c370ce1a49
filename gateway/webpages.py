"""What the server-rendered pages share (the officers' dashboard, the
enterprise portal and its consent page): their security headers, the bounded
urlencoded form reader, the CSRF comparison and the page language.

No page carries inline script or loads anything remote: the headers say so to
the browser (CSP), forbid framing (clickjacking on a page with an approve
button) and keep every page out of shared caches (they carry CSRF tokens and
who is logged in).
"""

from __future__ import annotations

import hmac
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
