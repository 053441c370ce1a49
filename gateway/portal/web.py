"""What every portal page shares: the session cookie, the current session as a
dependency (or a redirect to the login), the page layout and error pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Query, Request
from sqlalchemy import Connection
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.errors import ProblemError
from gateway.portal import sessions, views
from gateway.portal.sessions import PortalSession
from gateway.settings import Settings
from gateway.state import state_of
from gateway.webpages import PAGE_HEADERS, Lang, lang_of

SESSION_COOKIE = "xyd_portal"
LOGIN_COOKIE = "xyd_portal_login"
LOGIN_PATH = "/portal/login"
HOME = "/portal"
MAX_NEXT_CHARS = 1024
LangQuery = Annotated[str, Query(max_length=5)]


class LoginRequired(Exception):
    """No live portal session: the person is sent to the login, then back to `next_path`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def safe_next(value: str | None) -> str:
    """`value` if it is a same-origin relative path under /portal or
    /oauth/authorize; otherwise the portal's home. No scheme, no host, no `//`,
    no backslash, no control or space character (browsers drop tabs and newlines,
    turning `/\\t/evil` into `//evil`), no percent-escape in the path."""
    if not value or len(value) > MAX_NEXT_CHARS or not value.startswith("/"):
        return HOME
    if (
        value.startswith("//")
        or "\\" in value
        or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value)
    ):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "%" in parts.path or "/." in parts.path:
        return HOME
    path = parts.path
    if path == HOME or path.startswith(HOME + "/") or path == "/oauth/authorize":
        return value
    return HOME


def now() -> datetime:
    return datetime.now(UTC)


async def session_of(request: Request, *, touch: bool = True) -> PortalSession | None:
    """The live session this request's cookie names, or None."""
    state = state_of(request)
    token, at = request.cookies.get(SESSION_COOKIE), now()
    if not token:
        return None

    def work(conn: Connection) -> PortalSession | None:
        return sessions.get_session(conn, token, at, state.settings, touch=touch)

    async with state.engine.begin() as conn:
        return await conn.run_sync(work)


async def current_session(request: Request) -> PortalSession:
    """The dependency for a portal page: the session, or LoginRequired (answered by
    a redirect to the login that comes back to this page)."""
    session = await session_of(request)
    if session is None:
        query = request.url.query
        raise LoginRequired(request.url.path + (f"?{query}" if query else ""))
    return session


PortalSessionDep = Annotated[PortalSession, Depends(current_session)]


def login_url(next_path: str, lang: Lang) -> str:
    return views.href(LOGIN_PATH, lang, next=safe_next(next_path))


async def login_redirect(request: Request, exc: Exception) -> Response:
    """The handler for LoginRequired (installed by the app)."""
    assert isinstance(exc, LoginRequired)
    lang = lang_of(request.query_params.get("lang"))
    return RedirectResponse(login_url(exc.next_path, lang), 303, headers=PAGE_HEADERS)


def html(document: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(document, status_code=status, headers=headers or PAGE_HEADERS)


def page(lang: Lang, session: PortalSession, title: str, main: str, path: str) -> HTMLResponse:
    """A portal page in the shared layout (nav, who is acting, language, logout)."""
    return html(views.layout(lang, session, title, main, path))


def error_page(
    lang: Lang, error: ProblemError, back: str = HOME, *, message: str | None = None
) -> HTMLResponse:
    """A refusal as a page a person reads (`message`, else the error's detail), with
    the error's 4xx/5xx status and headers."""
    login = error.status in (400, 401, 403)
    text = error.detail if message is None else message
    document = views.error_document(lang, text, views.href(back, lang), login=login)
    return html(document, error.status, {**PAGE_HEADERS, **error.headers})


def set_cookie(
    settings: Settings, response: Response, key: str, value: str, max_age: int, path: str
) -> None:
    # Lax, not Strict: the login callback is a top-level GET from the provider's site.
    response.set_cookie(
        key, value, max_age=max_age, path=path, httponly=True, samesite="lax",
        secure=settings.issuer.startswith("https://"),
    )  # fmt: skip
