"""The demo provider's HTTP plumbing: its HTML and OAuth error answers, and a
bounded reader of urlencoded forms."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from xyd_demo.oidc.pages import error_page

MAX_FORM_BYTES = 8192
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class BadForm(Exception):
    """A form too large, of the wrong type, or naming a field twice."""


def html(page: str, status: int, form_target: str = "") -> HTMLResponse:
    """No script, no framing, nothing remote; the form may post here and (its
    redirect) reach the relying party's origin."""
    csp = (
        "default-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        f"form-action 'self' {form_target}".rstrip()
    )
    headers = {
        **NO_STORE,
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return HTMLResponse(page, status_code=status, headers=headers)


def bad_request(detail: str) -> HTMLResponse:
    return html(error_page("请求无效 · Bad request", detail), 400)


def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers=NO_STORE)


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form of at most MAX_FORM_BYTES, each field named once."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        raise BadForm("the body must be application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadForm("the form is too large")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise BadForm("the form is not urlencoded UTF-8") from None
    found = dict(pairs)
    if len(found) != len(pairs):
        raise BadForm("a field is given twice")
    return found
