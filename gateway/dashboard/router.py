"""The risk officers' dashboard: login, the live alert list, an alert's evidence
page where it is worked, and the static files the pages use.

Server-rendered HTML. Every form carries a CSRF token: before login a
pre-session token set in its own short-lived cookie and echoed in the form
(double submit); after login the session's token, kept server-side. Only a
`risk_officer` works alerts; an `auditor` reads; a `department_reviewer` sees
only its credit repair pages (gateway/repairs/pages.py), and officers see the
applications past their review time. A refused form answers a
person (Accept: text/html) with a page in their language and a way back,
and a program with problem+json as everywhere else.

Reading an enterprise's loans here is a read of the ledger like
`GET /v1/loans`: one audit entry, by `user:<name>`, before the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from gateway.alerts import service as alert_service
from gateway.audit.service import allowed, record_allowed, record_with
from gateway.dashboard import accounts, facts, repository, views
from gateway.dashboard.i18n import TEXT
from gateway.dashboard.login import Login
from gateway.dashboard.throttle import source_of
from gateway.deps import EngineDep, RiskRulesDep, SettingsDep
from gateway.errors import (
    Conflict,
    Forbidden,
    InvalidValue,
    NotFound,
    ProblemError,
    Unauthorized,
)
from gateway.identifiers import checked_code
from gateway.loans import service as ledger
from gateway.settings import Settings
from gateway.state import state_of
from gateway.webpages import PAGE_HEADERS, CsrfRefused, Lang, csrf_matches, lang_of, read_form

router = APIRouter(tags=["dashboard"], include_in_schema=False)


async def _login(request: Request) -> Login:
    return state_of(request).login


LoginDep = Annotated[Login, Depends(_login)]
T = TypeVar("T")

SESSION_COOKIE = "xyd_dashboard"
PRE_COOKIE = "xyd_dashboard_login"
PRE_COOKIE_MAX_AGE_S = 600
NOTE_MAX_CHARS = 2000
STREAM_POLL_S = 0.25
STREAM_SESSION_CHECK_S = 1.0
HEARTBEAT_S = 15.0
_COOKIE_PATH = "/dashboard"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_STATIC: dict[str, tuple[bytes, str, str]] = {
    path.name: (data, _STATIC_TYPES[path.suffix], hashlib.sha256(data).hexdigest()[:16])
    for path in sorted((Path(__file__).parent / "static").iterdir())
    if path.suffix in _STATIC_TYPES
    for data in [path.read_bytes()]
}
LangQuery = Annotated[str, Query(max_length=5)]
FilterText = Annotated[str, Query(max_length=40)]


def _alert_filters(
    status: FilterText = "open",
    severity: FilterText = "",
    rule: FilterText = "",
    credit_code: FilterText = "",
) -> repository.Filters:
    return repository.filters_of(status, severity, rule, credit_code)


# The list and its stream take the same filters from the query string.
AlertFilters = Annotated[repository.Filters, Depends(_alert_filters)]


def _now() -> datetime:
    return datetime.now(UTC)


async def _db(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    async with engine.begin() as conn:
        return await conn.run_sync(work)


def _set_cookie(settings: Settings, response: Response, key: str, value: str, max_age: int) -> None:
    response.set_cookie(
        key,
        value,
        max_age=max_age,
        path=_COOKIE_PATH,
        secure=settings.issuer.startswith("https://"),
        httponly=True,
        samesite="strict",
    )


def _html(document: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(document, status_code=status, headers=PAGE_HEADERS)


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=PAGE_HEADERS)


def _login_page(lang: Lang, csrf: str, error: str | None = None, status: int = 200) -> Response:
    body = views.login_body(lang, csrf, error)
    return _html(views.document(lang, TEXT[lang]["title"], body), status)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _refused(request: Request, error: ProblemError, lang: Lang, back: str) -> Response:
    """A refused form: a page for a browser, problem+json (raised) for a program."""
    if not _wants_html(request):
        raise error
    key = {
        CsrfRefused: "csrf_refused", RoleRefused: "role_refused", InvalidValue: "note_refused",
    }.get(type(error), "form_refused")  # fmt: skip
    body = views.error_body(lang, TEXT[lang][key], back)
    return _html(views.document(lang, TEXT[lang]["refused"], body), error.status)


class RoleRefused(Forbidden):
    type_slug = "dashboard-role"


async def _session(
    request: Request, engine: AsyncEngine, *, touch: bool = True
) -> accounts.Session | None:
    token, now = request.cookies.get(SESSION_COOKIE), _now()
    if not token:
        return None

    def work(conn: Connection) -> accounts.Session | None:
        found = accounts.get_session(conn, token, now)
        if found is not None and touch:
            accounts.touch_session(conn, token, now)
        return found

    return await _db(engine, work)


# --- login and logout ---------------------------------------------------------------


@router.get("/dashboard/login")
async def login_form(
    request: Request, engine: EngineDep, settings: SettingsDep, lang: LangQuery = "zh"
) -> Response:
    if await _session(request, engine, touch=False) is not None:
        return _redirect(views.href("/dashboard", lang_of(lang)))
    csrf = secrets.token_urlsafe(32)
    response = _login_page(lang_of(lang), csrf)
    _set_cookie(settings, response, PRE_COOKIE, csrf, PRE_COOKIE_MAX_AGE_S)
    return response


@router.post("/dashboard/login")
async def login(
    request: Request, service: LoginDep, settings: SettingsDep, lang: LangQuery = "zh"
) -> Response:
    form = await read_form(request)
    pre = request.cookies.get(PRE_COOKIE)
    page_lang = lang_of(lang)
    if not csrf_matches(pre, form.get("csrf")):
        refused = CsrfRefused("the login form's CSRF token is missing or wrong; reload the page")
        return _refused(request, refused, page_lang, views.href("/dashboard/login", page_lang))
    assert pre is not None  # csrf_matches refuses a missing one
    name, password = form.get("name", ""), form.get("password", "")
    source = source_of(request.client.host if request.client else None)
    attempt = await service.attempt(
        name, password, source, request.cookies.get(SESSION_COOKIE), _now()
    )
    token = attempt.token
    if token is None:
        if attempt.retry_after_s:
            page = _login_page(page_lang, pre, TEXT[page_lang]["locked"], 429)
            page.headers["Retry-After"] = str(attempt.retry_after_s)
            return page
        return _login_page(page_lang, pre, TEXT[page_lang]["wrong"], 401)
    response = _redirect(views.href("/dashboard", page_lang))
    max_age = int(accounts.ABSOLUTE_TIMEOUT.total_seconds())
    _set_cookie(settings, response, SESSION_COOKIE, token, max_age)
    response.delete_cookie(PRE_COOKIE, path=_COOKIE_PATH)
    return response


@router.post("/dashboard/logout")
async def logout(request: Request, engine: EngineDep, lang: LangQuery = "zh") -> Response:
    form = await read_form(request)
    token = request.cookies.get(SESSION_COOKIE)
    session = await _session(request, engine, touch=False)
    if session is not None and token:
        if not csrf_matches(session.csrf_token, form.get("csrf")):
            refused = CsrfRefused("the logout form's CSRF token is missing or wrong")
            page_lang = lang_of(lang)
            return _refused(request, refused, page_lang, views.href("/dashboard", page_lang))
        await _db(engine, lambda c: accounts.destroy_session(c, token))
    response = _redirect("/dashboard/login")
    response.delete_cookie(SESSION_COOKIE, path=_COOKIE_PATH)
    return response


# --- the alert list and its live stream -----------------------------------------------


@router.get("/dashboard")
async def dashboard(
    request: Request,
    engine: EngineDep,
    risk_rules: RiskRulesDep,
    filters: AlertFilters,
    lang: LangQuery = "zh",
) -> Response:
    session = await _session(request, engine)
    page_lang = lang_of(lang)
    if session is None:
        return _redirect(views.href("/dashboard/login", page_lang))
    if session.role == accounts.REVIEWER:
        return _redirect(views.href("/dashboard/repairs", page_lang))
    now = _now()
    today = now.astimezone(repository.CHENGDU).date()

    def read(conn: Connection) -> str:
        revision = repository.latest_revision(conn)
        items, total = repository.alert_list(conn, filters)
        names = repository.enterprise_names(conn, facts.codes_in(a["credit_code"] for a in items))
        counts = repository.open_counts(conn)
        days, per_rule = repository.alerts_per_day(conn, today)
        platforms = repository.platform_figures(conn)
        dead, dead_items = repository.dead_letters(conn)
        late, late_items = repository.overdue_repairs(conn, now, 20)
        return (
            views.counts_strip(page_lang, counts)
            + views.dead_letters(page_lang, dead, dead_items)
            + views.overdue_repairs(page_lang, late, late_items)
            + views.filter_bar(page_lang, filters, [r.name for r in risk_rules])
            + views.alert_table(page_lang, items, total, filters, revision, names)
            + views.charts(page_lang)
            + views.chart_data(page_lang, days, per_rule, platforms)
        )

    main = await _db(engine, read)
    body = views.header(
        page_lang, session.user_name, session.role, session.csrf_token, "/dashboard",
        filters.query(),
    ) + f'<main class="board">{main}</main>'  # fmt: skip
    return _html(views.document(page_lang, TEXT[page_lang]["title"], body, script=True))


def _sse(event: str, data: object, event_id: int | None = None) -> bytes:
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


@router.get("/dashboard/stream")
async def stream(
    request: Request,
    engine: EngineDep,
    filters: AlertFilters,
    lang: LangQuery = "zh",
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    """Each changed alert as the row the list shows, and whether it still belongs
    in the list under these filters; `counts` are the open alerts by severity."""
    session = await _session(request, engine, touch=False)
    if session is None:
        raise Unauthorized("log in at /dashboard/login", scheme="Session")
    if session.role == accounts.REVIEWER:
        raise RoleRefused("a department reviewer sees credit repairs only")
    token = request.cookies.get(SESSION_COOKIE, "")
    page_lang = lang_of(lang)
    cursor = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
    loop = asyncio.get_running_loop()

    async def events() -> AsyncIterator[bytes]:
        feed = alert_service.ChangeFeed(cursor)
        checked = quiet = loop.time()
        yield b"retry: 2000\n\n"
        while not await request.is_disconnected():
            beat = loop.time() - quiet >= HEARTBEAT_S
            async with engine.connect() as conn:
                fresh = await conn.run_sync(feed.take)
                # Checked before anything is sent, and every second: a logout,
                # `xyd users disable` or `logout-all` ends the stream at once.
                alive = True
                if fresh or beat or loop.time() - checked >= STREAM_SESSION_CHECK_S:
                    checked = loop.time()
                    alive = await conn.run_sync(accounts.get_session, token, _now()) is not None
                counts = await conn.run_sync(repository.open_counts) if fresh and alive else {}
                codes = facts.codes_in(a["credit_code"] for a in fresh) if alive else set()
                names = await conn.run_sync(repository.enterprise_names, codes) if codes else {}
            if not alive:
                yield _sse("session-ended", {})
                return
            for alert in fresh:
                row = views.alert_row(alert, page_lang, names)
                yield _sse("alert", {
                    "id": alert["id"], "status": alert["status"], "severity": alert["severity"],
                    "match": filters.matches(alert), "html": row, "counts": counts,
                }, alert["revision"])  # fmt: skip
            if fresh:
                quiet = loop.time()
            elif beat:
                quiet = loop.time()
                yield b": keep-alive\n\n"
            await asyncio.sleep(STREAM_POLL_S)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={**PAGE_HEADERS, "X-Accel-Buffering": "no"},
    )


# --- one alert: its evidence, and working it ------------------------------------------


def _alert_id(value: str) -> str:
    if not value.startswith("alr_") or len(value) > 40:
        raise NotFound(f"no alert {value[:40]}")
    return value


@router.get("/dashboard/alerts/{alert_id}")
async def alert_page(
    request: Request,
    engine: EngineDep,
    alert_id: str,
    lang: LangQuery = "zh",
    msg: FilterText = "",
) -> Response:
    session = await _session(request, engine)
    page_lang = lang_of(lang)
    if session is None:
        return _redirect(views.href("/dashboard/login", page_lang))
    if session.role == accounts.REVIEWER:
        return _redirect(views.href("/dashboard", page_lang))
    checked = _alert_id(alert_id)

    def read(conn: Connection) -> str:
        alert = alert_service.get(conn, checked)
        events = repository.evidence_events(conn, alert["evidence"])
        seen = [(e["credit_code"], e["attrs"]) for e in events.values()]
        codes = facts.codes_in([alert["credit_code"], alert["details"], seen])
        names = repository.enterprise_names(conn, codes)
        return views.alert_page(page_lang, alert, events, names, session.role, session.csrf_token)

    main = await _db(engine, read)
    notice = (
        f'<p class="flash" role="status">{views.esc(TEXT[page_lang]["stale"])}</p>'
        if msg == "stale"
        else ""
    )
    body = views.header(
        page_lang, session.user_name, session.role, session.csrf_token,
        f"/dashboard/alerts/{checked}", {},
    ) + notice + main  # fmt: skip
    return _html(views.document(page_lang, TEXT[page_lang]["title"], body))


@router.post("/dashboard/alerts/{alert_id}/{action}")
async def work_alert(
    request: Request, engine: EngineDep, alert_id: str, action: str, lang: LangQuery = "zh"
) -> Response:
    if action not in ("acknowledge", "resolve"):
        raise NotFound(f"no dashboard action {action[:20]}")
    checked = _alert_id(alert_id)
    form = await read_form(request)
    session = await _session(request, engine)
    page_lang = lang_of(lang)
    if session is None:
        return _redirect(views.href("/dashboard/login", page_lang))
    page = views.href(f"/dashboard/alerts/{checked}", page_lang)
    if not csrf_matches(session.csrf_token, form.get("csrf")):
        refused: ProblemError = CsrfRefused("the form's CSRF token is missing or wrong")
        return _refused(request, refused, page_lang, page)
    if session.role != "risk_officer":
        return _refused(request, RoleRefused(f"a {session.role} cannot {action} alerts"),
                        page_lang, page)  # fmt: skip
    note = form.get("note", "").strip()
    if not note or len(note) > NOTE_MAX_CHARS:
        refused = InvalidValue(f"note: 1 to {NOTE_MAX_CHARS} characters", field="note")
        return _refused(request, refused, page_lang, page)
    verb: Literal["acknowledge", "resolve"] = (
        "acknowledge" if action == "acknowledge" else "resolve"
    )
    actor = f"user:{session.user_name}"[:64]
    try:
        async with engine.begin() as conn:
            alert = await conn.run_sync(alert_service.work, checked, verb, actor, note)
            # In the same transaction: the alert is worked and audited, or neither.
            await record_with(request, conn, allowed(
                request, actor, b"", reason=alert_service.audit_reason(alert),
                credit_code=alert["credit_code"]))  # fmt: skip
    except Conflict:
        # Someone else worked it first: show them what it is now.
        return _redirect(views.href(f"/dashboard/alerts/{checked}", page_lang, msg="stale"))
    return _redirect(page)


# --- an enterprise's loans ------------------------------------------------------------


@router.get("/dashboard/enterprises/{credit_code}/loans")
async def enterprise_loans(
    request: Request, engine: EngineDep, credit_code: str, lang: LangQuery = "zh"
) -> Response:
    session = await _session(request, engine)
    page_lang = lang_of(lang)
    if session is None:
        return _redirect(views.href("/dashboard/login", page_lang))
    if session.role == accounts.REVIEWER:
        return _redirect(views.href("/dashboard", page_lang))
    code = checked_code(credit_code[:40])

    def read(conn: Connection) -> str:
        items = ledger.for_enterprise(conn, code)
        codes = {code} | {i["core_enterprise_code"] for i in items if i["core_enterprise_code"]}
        return views.loans_page(page_lang, code, items, repository.enterprise_names(conn, codes))

    main = await _db(engine, read)
    body = views.header(
        page_lang, session.user_name, session.role, session.csrf_token,
        f"/dashboard/enterprises/{code}/loans", {},
    ) + main  # fmt: skip
    page = views.document(page_lang, TEXT[page_lang]["enterprise_loans"], body)
    await record_allowed(request, f"user:{session.user_name}"[:64], page.encode(),
                         reason="loan ledger read", credit_code=code)  # fmt: skip
    return _html(page)


# --- static files ------------------------------------------------------------------------


@router.get("/dashboard/static/{name}")
async def static_file(name: str, if_none_match: Annotated[str | None, Header(max_length=80)] = None
                      ) -> Response:  # fmt: skip
    found = _STATIC.get(name)
    if found is None:
        raise NotFound(f"no dashboard file {name[:60]}")
    data, media_type, digest = found
    headers = {
        "ETag": f'"{digest}"',
        "Cache-Control": "public, max-age=86400",
        "X-Content-Type-Options": "nosniff",
    }
    if if_none_match == f'"{digest}"':
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)
