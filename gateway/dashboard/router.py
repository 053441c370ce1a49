"""The risk officers' dashboard: login, logout and the (for now minimal) page.

Server-rendered HTML for browsers. Every form carries a CSRF token: before
login a pre-session token set in its own short-lived cookie and echoed in the
form (double submit); after login the session's token, kept server-side.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.dashboard import accounts
from gateway.errors import BadRequest, Forbidden, PayloadTooLarge, UnsupportedMediaType

router = APIRouter(tags=["dashboard"], include_in_schema=False)
T = TypeVar("T")
Lang = Literal["zh", "en"]

SESSION_COOKIE = "xyd_dashboard"
PRE_COOKIE = "xyd_dashboard_login"
PRE_COOKIE_MAX_AGE_S = 600
FORM_MAX_BYTES = 4096
_COOKIE_PATH = "/dashboard"
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Pages carry CSRF tokens and who is logged in: never from a shared cache.
    "Cache-Control": "no-store",
}
TEXT: dict[Lang, dict[str, str]] = {
    "zh": {
        "title": "信易贷风险看板",
        "login": "登录",
        "name": "用户名",
        "password": "密码",
        "wrong": "用户名或密码错误",
        "locked": "尝试次数过多，请稍后再试",
        "switch": "English",
        "switch_lang": "en",
        "signed_in": "已登录：",
        "coming": "告警界面即将上线。",
        "logout": "退出登录",
    },
    "en": {
        "title": "Xin Yi Dai risk dashboard",
        "login": "Log in",
        "name": "Name",
        "password": "Password",
        "wrong": "Wrong name or password",
        "locked": "Too many attempts, try again later",
        "switch": "中文",
        "switch_lang": "zh",
        "signed_in": "Logged in as ",
        "coming": "The alerts view is coming.",
        "logout": "Log out",
    },
}
LangQuery = Annotated[str, Query(max_length=5)]


def _lang(value: str) -> Lang:
    return "en" if value == "en" else "zh"


def _now() -> datetime:
    return datetime.now(UTC)


async def _db(request: Request, work: Callable[[Connection], T]) -> T:
    engine: AsyncEngine = request.app.state.engine
    async with engine.begin() as conn:
        return await conn.run_sync(work)


def _secure(request: Request) -> bool:
    return bool(request.app.state.settings.issuer.startswith("https://"))


def _set_cookie(request: Request, response: Response, key: str, value: str, max_age: int) -> None:
    response.set_cookie(
        key,
        value,
        max_age=max_age,
        path=_COOKIE_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )


def _page(lang: Lang, title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        f'<meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_SECURITY_HEADERS)


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=_SECURITY_HEADERS)


def _login_page(lang: Lang, csrf: str, error: str | None = None, status: int = 200) -> Response:
    t = TEXT[lang]
    esc = html.escape
    message = f'<p role="alert">{esc(error)}</p>' if error else ""
    body = (
        f"<h1>{esc(t['title'])}</h1>{message}"
        f'<form method="post" action="/dashboard/login?lang={lang}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        f'<label>{esc(t["name"])} <input name="name" autocomplete="username" required></label>'
        f'<label>{esc(t["password"])} <input name="password" type="password" '
        f'autocomplete="current-password" required></label>'
        f'<button type="submit">{esc(t["login"])}</button></form>'
        f'<p><a href="/dashboard/login?lang={t["switch_lang"]}">{esc(t["switch"])}</a></p>'
    )
    return _page(lang, t["title"], body, status)


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form body, at most 4 KiB (python-multipart is not installed)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX_BYTES:
            raise PayloadTooLarge(f"a dashboard form is at most {FORM_MAX_BYTES} bytes")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # An empty POST is a form without its CSRF token (403 later), not a format error.
    if body and media_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("send the form as application/x-www-form-urlencoded")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form body is not valid urlencoded UTF-8") from None
    return {key: values[0] for key, values in fields.items()}


@router.get("/dashboard/login")
async def login_form(request: Request, lang: LangQuery = "zh") -> Response:
    token, now = request.cookies.get(SESSION_COOKIE), _now()
    if token:
        session = await _db(request, lambda c: accounts.get_session(c, token, now))
        if session is not None:
            return _redirect("/dashboard")
    csrf = secrets.token_urlsafe(32)
    response = _login_page(_lang(lang), csrf)
    _set_cookie(request, response, PRE_COOKIE, csrf, PRE_COOKIE_MAX_AGE_S)
    return response


@router.post("/dashboard/login")
async def login(request: Request, lang: LangQuery = "zh") -> Response:
    form = await _form(request)
    pre = request.cookies.get(PRE_COOKIE)
    if not accounts.csrf_matches(pre, form.get("csrf")):
        raise Forbidden("the login form's CSRF token is missing or wrong; reload the page")
    assert pre is not None  # csrf_matches refuses a missing one
    name, password, now = form.get("name", ""), form.get("password", ""), _now()
    old_token = request.cookies.get(SESSION_COOKIE)

    def work(conn: Connection) -> tuple[accounts.Login, str | None]:
        result = accounts.verify_login(conn, name, password, now)
        if result.outcome is not accounts.Outcome.OK or result.name is None:
            return result, None
        # A fresh session on every login: a planted cookie is never promoted.
        if old_token:
            accounts.destroy_session(conn, old_token)
        return result, accounts.create_session(conn, result.name, now)[0]

    result, token = await _db(request, work)
    page_lang = _lang(lang)
    if token is None:
        locked = result.outcome is accounts.Outcome.LOCKED
        message = TEXT[page_lang]["locked" if locked else "wrong"]
        return _login_page(page_lang, pre, message, 429 if locked else 401)
    response = _redirect("/dashboard" + ("?lang=en" if page_lang == "en" else ""))
    max_age = int(accounts.ABSOLUTE_TIMEOUT.total_seconds())
    _set_cookie(request, response, SESSION_COOKIE, token, max_age)
    response.delete_cookie(PRE_COOKIE, path=_COOKIE_PATH)
    return response


@router.post("/dashboard/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    token = request.cookies.get(SESSION_COOKIE)
    now = _now()
    session = await _db(request, lambda c: accounts.get_session(c, token, now)) if token else None
    if session is not None and token:
        if not accounts.csrf_matches(session.csrf_token, form.get("csrf")):
            raise Forbidden("the logout form's CSRF token is missing or wrong")
        await _db(request, lambda c: accounts.destroy_session(c, token))
    response = _redirect("/dashboard/login")
    response.delete_cookie(SESSION_COOKIE, path=_COOKIE_PATH)
    return response


@router.get("/dashboard")
async def dashboard(request: Request, lang: LangQuery = "zh") -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    now = _now()

    def work(conn: Connection) -> accounts.Session | None:
        found = accounts.get_session(conn, token, now)
        if found is not None and token:
            accounts.touch_session(conn, token, now)
        return found

    session = await _db(request, work)
    if session is None:
        return _redirect("/dashboard/login")
    page_lang = _lang(lang)
    t, esc = TEXT[page_lang], html.escape
    body = (
        f"<h1>{esc(t['title'])}</h1>"
        f'<p>{esc(t["signed_in"])}<strong id="user">{esc(session.user_name)}</strong>'
        f' (<span id="role">{esc(session.role)}</span>)</p><p>{esc(t["coming"])}</p>'
        '<form method="post" action="/dashboard/logout">'
        f'<input type="hidden" name="csrf" value="{esc(session.csrf_token)}">'
        f'<button type="submit">{esc(t["logout"])}</button></form>'
    )
    return _page(page_lang, t["title"], body)
