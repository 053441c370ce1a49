"""Credit repair (信用修复) on the portal: the enterprise's penalties, each with
whether it may be repaired yet (and why not, and from when), the application
with evidence uploads and the 失信修复型 commitment accepted, and the review
followed to its decision and reason.

Everything is the repairs feature's (gateway/repairs/service.py): eligibility,
evidence sniffed by content and bounded, the application filed with its
commitment record and audit entry by `http.apply_audited` (on the sync engine:
the records path COPYs on PostgreSQL). The upload is a multipart form read
bounded before it is parsed (webpages.read_multipart): the evidence limit in
all plus 64 KiB for the other fields. The applicant is recorded as the
session's PortalPrincipal (`portal:` and its keyed hash); another enterprise's
penalty or application is 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import Connection
from starlette.responses import RedirectResponse, Response

from gateway.deps import EngineDep, StateDep
from gateway.errors import Conflict, InvalidValue, ProblemError
from gateway.portal import repair_views
from gateway.portal.i18n import TEXT
from gateway.portal.sessions import PortalSession
from gateway.portal.views import href
from gateway.portal.web import LangQuery, PortalSessionDep, error_page, page
from gateway.repairs import evidence, service
from gateway.repairs.eligibility import PenaltyEligibility
from gateway.repairs.http import apply_audited
from gateway.reports.build import report_day
from gateway.settings import Settings
from gateway.state import GatewayState
from gateway.webpages import PAGE_HEADERS, CsrfRefused, Lang, csrf_matches, lang_of, read_multipart

router = APIRouter(tags=["portal"], include_in_schema=False)
REPAIRS = repair_views.REPAIRS
APPLY = REPAIRS + "/apply"
FIELDS_SLACK = 64 * 1024  # csrf, record id, statement, the accept box and part headers
STATEMENT_MAX = 2000
ApplicationId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


def _penalties(
    conn: Connection, settings: Settings, credit_code: str
) -> list[tuple[PenaltyEligibility, str | None]]:
    on = report_day(datetime.now(UTC))
    return service.penalties(conn, settings.config_dir, credit_code, on)


@router.get(REPAIRS)
async def repairs(
    session: PortalSessionDep, engine: EngineDep, state: StateDep, lang: LangQuery = "zh"
) -> Response:
    page_lang = lang_of(lang)

    def read(conn: Connection) -> str:
        judged = _penalties(conn, state.settings, session.credit_code)
        applications = service.of_enterprise(conn, session.credit_code)
        return repair_views.overview(page_lang, judged, applications)

    async with engine.connect() as conn:
        main = await conn.run_sync(read)
    return page(page_lang, session, TEXT[page_lang]["repairs_title"], main, REPAIRS)


async def _repairable(
    state: GatewayState, session: PortalSession, record_id: int, lang: Lang
) -> PenaltyEligibility:
    """The enterprise's penalty, eligible now with nothing pending; else the refusal
    the service would give (404, 422 with the reason in the page's language, 409)."""
    async with state.engine.connect() as conn:
        found = await conn.run_sync(_penalties, state.settings, session.credit_code)
    for judged, pending in found:
        if judged.record_id != record_id:
            continue
        if pending is not None:
            raise Conflict(f"penalty {record_id} has a pending application", application_id=pending)
        if not judged.eligibility.eligible:
            raise service.NotRepairable(judged.zh if lang == "zh" else judged.en)
        return judged
    raise service.UnknownPenalty(f"no penalty {record_id} of {session.credit_code}")


def _limits(settings: Settings) -> dict[str, int]:
    return {
        "max_file": settings.repair_evidence_max_bytes,
        "max_total": settings.repair_evidence_max_total_bytes,
        "max_files": settings.repair_evidence_max_files,
    }


@router.get(APPLY)
async def apply_form(
    session: PortalSessionDep,
    state: StateDep,
    record_id: Annotated[int, Query(ge=1, le=2**62)],
    lang: LangQuery = "zh",
) -> Response:
    page_lang = lang_of(lang)
    try:
        judged = await _repairable(state, session, record_id, page_lang)
    except ProblemError as refused:
        return error_page(page_lang, refused, REPAIRS)
    commitment = service.commitment_text(state.settings.config_dir)
    main = repair_views.apply_form(
        page_lang, session.csrf, judged, commitment, _limits(state.settings)
    )
    return page(page_lang, session, TEXT[page_lang]["apply_title"], main, REPAIRS)


def _record_id(value: str | None) -> int:
    if not value or not value.isdigit() or len(value) > 18:
        raise InvalidValue("record_id: not one of your penalties")
    return int(value)


async def _application(
    request: Request, state: GatewayState, session: PortalSession, lang: Lang
) -> service.NewApplication:
    """The form read bounded, its CSRF token checked, then its fields and files."""
    settings, t = state.settings, TEXT[lang]
    form = await read_multipart(
        request,
        max_bytes=settings.repair_evidence_max_total_bytes + FIELDS_SLACK,
        max_parts=settings.repair_evidence_max_files + 8,
    )
    if not csrf_matches(session.csrf, form.fields.get("csrf")):
        raise CsrfRefused("the form's CSRF token is missing or wrong")
    record_id = _record_id(form.fields.get("record_id"))
    accepted = form.fields.get("accept", "")
    if not accepted:
        raise InvalidValue(t["accept_needed"])
    statement = form.fields.get("statement", "").strip() or None
    if statement is not None and len(statement) > STATEMENT_MAX:
        raise InvalidValue(f"statement: at most {STATEMENT_MAX} characters")
    named = [(f.file_name, f.content) for f in form.files if f.field == "evidence"]
    if not named:
        raise InvalidValue(t["evidence_needed"])
    files = evidence.check_all(
        named, settings.repair_evidence_max_bytes, settings.repair_evidence_max_files,
        settings.repair_evidence_max_total_bytes,
    )  # fmt: skip
    return service.NewApplication(session.credit_code, record_id, statement, accepted, files)


@router.post(APPLY)
async def apply(
    request: Request, session: PortalSessionDep, state: StateDep, lang: LangQuery = "zh"
) -> Response:
    page_lang = lang_of(lang)
    applicant = service.Applicant(session.principal.actor, "portal")
    try:
        new = await _application(request, state, session, page_lang)
        filed = await apply_audited(request, state, applicant, new)
    except service.NotRepairable as refused:
        words = refused.extensions.get("zh") if page_lang == "zh" else None
        return error_page(page_lang, service.NotRepairable(words or refused.detail), REPAIRS)
    except ProblemError as refused:
        return error_page(page_lang, refused, REPAIRS)
    target = href(f"{REPAIRS}/{filed['id']}", page_lang, msg="new")
    return RedirectResponse(target, 303, headers=PAGE_HEADERS)


@router.get(REPAIRS + "/{application_id}")
async def application(
    application_id: ApplicationId,
    session: PortalSessionDep,
    engine: EngineDep,
    state: StateDep,
    lang: LangQuery = "zh",
    msg: LangQuery = "",
) -> Response:
    page_lang = lang_of(lang)
    viewer = service.Viewer.enterprise(session.credit_code)
    try:
        async with engine.connect() as conn:
            item = await conn.run_sync(lambda c: service.get(c, application_id, viewer))
    except ProblemError as refused:
        return error_page(page_lang, refused, REPAIRS)
    commitment = service.commitment_text(state.settings.config_dir)
    main = repair_views.application(page_lang, item, commitment, applied=msg == "new")
    return page(page_lang, session, TEXT[page_lang]["application_title"], main, REPAIRS)
