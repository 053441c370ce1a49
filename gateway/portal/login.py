"""The enterprise login: /portal/login → the provider → /portal/login/callback →
a fresh session; /portal/logout ends it (a form with the session's CSRF token).

A refusal is a page with its 4xx (or 503 when the provider cannot be reached),
never a redirect anywhere but the provider and `next`, which `safe_next` keeps
on this site under /portal or /oauth/authorize."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection
from starlette.responses import RedirectResponse, Response

from gateway.consents.principal import PortalPrincipal
from gateway.dashboard.throttle import source_of
from gateway.deps import EngineDep, SettingsDep
from gateway.errors import BadRequest, ProblemError, RateLimited
from gateway.portal import sessions, views
from gateway.portal.i18n import REFUSALS, TEXT, word
from gateway.portal.oidc import LoginRefused, RelyingParty
from gateway.portal.web import (
    LOGIN_COOKIE,
    LOGIN_PATH,
    SESSION_COOKIE,
    LangQuery,
    error_page,
    html,
    now,
    safe_next,
    session_of,
    set_cookie,
)
from gateway.state import state_of
from gateway.webpages import PAGE_HEADERS, CsrfRefused, Lang, csrf_matches, lang_of, read_form

router = APIRouter(tags=["portal"], include_in_schema=False)
CALLBACK_PATH = LOGIN_PATH + "/callback"
_CALLBACK_PARAMS = {"code": 512, "state": 200, "iss": 512, "error": 100, "error_description": 500}


async def _relying_party(request: Request) -> RelyingParty:
    return state_of(request).relying_party


RelyingPartyDep = Annotated[RelyingParty, Depends(_relying_party)]


def _redirect(location: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(location, status, headers=PAGE_HEADERS)


@router.get(LOGIN_PATH)
async def login(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    party: RelyingPartyDep,
    lang: LangQuery = "zh",
) -> Response:
    page_lang = lang_of(lang)
    params = request.query_params
    if len(params.getlist("next")) > 1:
        return error_page(page_lang, BadRequest("next: given more than once"))
    next_path = safe_next(params.get("next"))
    if await session_of(request, touch=False) is not None:
        return _redirect(next_path)
    source = source_of(request.client.host if request.client else None)
    try:
        wait = await state_of(request).login.throttle.admit_source(source)
        if wait:
            raise RateLimited("too many logins started from this address", retry_after_s=wait)
        reg = party.registration()
        await party.metadata(reg)  # before a pending login is stored for nothing
        async with engine.begin() as conn:
            browser, state = await conn.run_sync(sessions.start_login, next_path, now(), settings)
        url = await party.authorization_url(
            reg, settings.issuer + CALLBACK_PATH, state,
            sessions.nonce_of(browser, state), sessions.verifier_of(browser, state),
        )  # fmt: skip
    except ProblemError as refused:
        return _login_refused(page_lang, refused)
    response = _redirect(url, 302)
    set_cookie(settings, response, LOGIN_COOKIE, browser, settings.portal_login_ttl_s, LOGIN_PATH)
    return response


def _login_refused(lang: Lang, refused: ProblemError) -> Response:
    """A refused login as a page in the person's words, the technical cause after it
    (what a helpdesk asks for); the status is the error's."""
    key = {429: "login_busy"}.get(refused.status, "login_failed")
    if refused.status >= 500:
        key = "login_unavailable"
    words = f"{word(REFUSALS, lang, key)} {word(REFUSALS, lang, 'technical')}{refused.detail}"
    return error_page(lang, refused, message=words)


def _callback_params(request: Request) -> dict[str, str]:
    pairs = request.query_params.multi_items()
    found = dict(pairs)
    if len(found) != len(pairs):
        raise BadRequest("a parameter is given more than once")
    for name, limit in _CALLBACK_PARAMS.items():
        if len(found.get(name, "")) > limit:
            raise BadRequest(f"{name}: at most {limit} characters")
    return found


@router.get(CALLBACK_PATH)
async def callback(
    request: Request, engine: EngineDep, settings: SettingsDep, party: RelyingPartyDep
) -> Response:
    """The provider's answer: the login spent, the code redeemed, the ID token
    checked, then a fresh session (any session the browser brought ends)."""
    try:
        params = _callback_params(request)
        browser = request.cookies.get(LOGIN_COOKIE)
        state = params.get("state", "")
        async with engine.begin() as conn:
            next_path = await conn.run_sync(sessions.finish_login, state, browser, now())
        assert browser is not None  # finish_login refuses a login without its cookie
        if "error" in params:
            raise LoginRefused(f"the identity provider answered {params['error']}")
        reg = party.registration()
        if "iss" in params and params["iss"] != reg.issuer:  # RFC 9207: a mix-up
            raise LoginRefused("the answer came from another identity provider")
        if not params.get("code"):
            raise BadRequest("code is required")
        id_token = await party.exchange(
            reg, params["code"], settings.issuer + CALLBACK_PATH,
            sessions.verifier_of(browser, state),
        )  # fmt: skip
        person = await party.verify_id_token(reg, id_token, sessions.nonce_of(browser, state))
    except ProblemError as refused:
        page = _login_refused(lang_of(None), refused)
        page.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
        return page
    principal = PortalPrincipal.of(
        state_of(request).pii_key, person.subject, person.credit_code, person.role
    )
    old = request.cookies.get(SESSION_COOKIE)

    def begin_session(conn: Connection) -> str:
        if old:
            sessions.end_session(conn, old)
        return sessions.create_session(conn, principal, now(), settings)

    async with engine.begin() as conn:
        token = await conn.run_sync(begin_session)
    response = _redirect(safe_next(next_path))
    set_cookie(settings, response, SESSION_COOKIE, token, settings.portal_absolute_timeout_s, "/")
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return response


@router.post("/portal/logout")
async def logout(request: Request, engine: EngineDep, lang: LangQuery = "zh") -> Response:
    page_lang = lang_of(lang)
    form = await read_form(request)
    token = request.cookies.get(SESSION_COOKIE)
    session = await session_of(request, touch=False)
    if session is not None and token:
        if not csrf_matches(session.csrf, form.get("csrf")):
            return error_page(page_lang, CsrfRefused("the logout form's CSRF token is wrong"))
        async with engine.begin() as conn:
            await conn.run_sync(sessions.end_session, token)
    t = TEXT[page_lang]
    body = (
        f'<main class="login"><div class="card"><h1>{views.esc(t["title"])}</h1>'
        f"<p>{views.esc(t['logged_out'])}</p>"
        f'<p><a href="{views.esc(views.href(LOGIN_PATH, page_lang))}">{views.esc(t["login"])}'
        "</a></p></div></main>"
    )
    answer = html(views.document(page_lang, t["title"], body))
    answer.delete_cookie(SESSION_COOKIE, path="/")
    return answer
