"""The department reviewer's pages: its credit repair queue, one application with
its evidence (downloaded as attachments) and commitment, and the decision forms.

A `department_reviewer` sees only applications about its own department's
penalties (another's is 404, as an unknown one) and nothing else of the
dashboard; the forms carry the session's CSRF token. A decision goes through
the same service as `POST /v1/repairs/{id}/decision`, as `user:<name>`; every
page, file and decision is audited once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import Connection
from starlette.responses import Response

from gateway.audit.service import record_allowed
from gateway.dashboard import accounts, repository, views
from gateway.dashboard.i18n import TEXT
from gateway.dashboard.router import (
    LangQuery,
    RoleRefused,
    _db,
    _html,
    _redirect,
    _refused,
    _session,
)
from gateway.deps import EngineDep, StateDep
from gateway.errors import Conflict, InvalidValue, NotFound, ProblemError
from gateway.repairs import service
from gateway.repairs.http import attachment, decide_audited
from gateway.repairs.views import WORDS, application_page, queue_page
from gateway.webpages import CsrfRefused, Lang, csrf_matches, lang_of, read_form

router = APIRouter(tags=["dashboard"], include_in_schema=False)
DECISION_FORM_MAX_BYTES = 32 * 1024  # a 2,000-character reason, percent-encoded
ApplicationId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


def _page(lang: Lang, session: accounts.Session, here: str, main: str) -> Response:
    body = views.header(lang, session.user_name, session.role, session.csrf_token, here, {})
    return _html(views.document(lang, WORDS[lang]["queue"], body + main))


def _reviewer(session: accounts.Session | None) -> str | None:
    """The department a logged-in reviewer reviews for; None for anyone else."""
    if session is None or session.role != accounts.REVIEWER:
        return None
    return session.department


@router.get("/dashboard/repairs")
async def repair_queue(
    request: Request,
    engine: EngineDep,
    lang: LangQuery = "zh",
    status: Literal["pending", "approved", "rejected"] = "pending",
) -> Response:
    session = await _session(request, engine)
    page_lang = lang_of(lang)
    department = _reviewer(session)
    if session is None or department is None:
        return _redirect(views.href("/dashboard", page_lang))
    now = datetime.now(UTC)

    def read(conn: Connection) -> str:
        items = service.queue(conn, department, status)
        names = repository.enterprise_names(conn, {a["credit_code"] for a in items})
        return queue_page(page_lang, status, items, names, now)

    return _page(page_lang, session, "/dashboard/repairs", await _db(engine, read))


@router.get("/dashboard/repairs/{application_id}")
async def repair_application(
    request: Request,
    engine: EngineDep,
    state: StateDep,
    application_id: ApplicationId,
    lang: LangQuery = "zh",
    msg: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    session = await _session(request, engine)
    page_lang = lang_of(lang)
    department = _reviewer(session)
    if session is None or department is None:
        return _redirect(views.href("/dashboard", page_lang))
    viewer = service.Viewer.reviewer(department)
    commitment = service.commitment_text(state.settings.config_dir)

    def read(conn: Connection) -> tuple[str, str]:
        item = service.get(conn, application_id, viewer)
        penalty = service.penalty_of(conn, item["credit_code"], item["record_id"])
        name = repository.enterprise_names(conn, {item["credit_code"]}).get(item["credit_code"])
        notice = WORDS[page_lang]["stale"] if msg == "stale" else None
        main = application_page(
            page_lang, item, penalty, commitment, name or "", session.csrf_token, notice
        )
        return main, item["credit_code"]

    main, code = await _db(engine, read)
    page = _page(page_lang, session, f"/dashboard/repairs/{application_id}", main)
    await record_allowed(
        request, _actor(session), bytes(page.body), reason=f"repair {application_id} read",
        credit_code=code,
    )  # fmt: skip
    return page


def _actor(session: accounts.Session) -> str:
    return f"user:{session.user_name}"[:64]


@router.get("/dashboard/repairs/{application_id}/evidence/{evidence_id}")
async def repair_evidence(
    request: Request,
    engine: EngineDep,
    application_id: ApplicationId,
    evidence_id: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    session = await _session(request, engine)
    department = _reviewer(session)
    if session is None or department is None:
        raise NotFound(f"no evidence {evidence_id}")
    viewer = service.Viewer.reviewer(department)
    found = await _db(
        engine, lambda c: service.evidence_file(c, application_id, evidence_id, viewer)
    )
    content = bytes(found.content)
    await record_allowed(
        request, _actor(session), content,
        reason=f"repair {application_id} evidence {evidence_id}",
    )  # fmt: skip
    return attachment(content, found.media_type, f"{application_id}-{found.position}")


@router.post("/dashboard/repairs/{application_id}/decision")
async def repair_decision(
    request: Request,
    engine: EngineDep,
    state: StateDep,
    application_id: ApplicationId,
    lang: LangQuery = "zh",
) -> Response:
    form = await read_form(request, max_bytes=DECISION_FORM_MAX_BYTES)
    session = await _session(request, engine)
    page_lang = lang_of(lang)
    if session is None:
        return _redirect(views.href("/dashboard/login", page_lang))
    page = views.href(f"/dashboard/repairs/{application_id}", page_lang)
    if not csrf_matches(session.csrf_token, form.get("csrf")):
        return _refused(request, CsrfRefused("the form's CSRF token is missing or wrong"),
                        page_lang, page)  # fmt: skip
    department = _reviewer(session)
    if department is None:
        return _refused(request, RoleRefused(f"a {session.role} cannot decide repairs"),
                        page_lang, page)  # fmt: skip
    decision, reason = form.get("decision", ""), form.get("reason", "").strip() or None
    if (
        decision not in ("approve", "reject")
        or (reason and len(reason) > 2000)
        or (decision == "reject" and reason is None)
    ):
        refused = InvalidValue(
            f"{TEXT[page_lang]['note_refused']} {WORDS[page_lang]['reason_required']}"
        )
        return _refused(request, refused, page_lang, page)
    chosen: Literal["approve", "reject"] = "approve" if decision == "approve" else "reject"
    try:
        await decide_audited(
            request, state, department, _actor(session), application_id, chosen, reason
        )
    except Conflict:
        return _redirect(views.href(f"/dashboard/repairs/{application_id}", page_lang, msg="stale"))
    except ProblemError as error:
        return _refused(request, error, page_lang, page)
    return _redirect(page)
