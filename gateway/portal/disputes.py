"""Disputes (异议) on the portal: the enterprise's person raises one on a record
shown in their report and follows its state. Opened through the records
feature's service (`records.disputes.open_dispute`) with the session's
`PortalPrincipal` as the opener (recorded by its keyed hash), audited in the
same transaction; the department that delivered the record answers it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from sqlalchemy import Connection
from starlette.responses import RedirectResponse, Response

from gateway.audit.service import allowed, record_with
from gateway.deps import EngineDep
from gateway.errors import InvalidValue, ProblemError
from gateway.portal import record_views
from gateway.portal.i18n import TEXT
from gateway.portal.selfreport import own_cut
from gateway.portal.views import href
from gateway.portal.web import LangQuery, PortalSessionDep, error_page, page
from gateway.records import disputes
from gateway.webpages import PAGE_HEADERS, CsrfRefused, csrf_matches, lang_of, read_form

router = APIRouter(tags=["portal"], include_in_schema=False)
DISPUTES = "/portal/disputes"
LISTED_MAX = 200
FORM_MAX_BYTES = 32 * 1024  # a 2,000-character reason, percent-encoded
RecordQuery = Annotated[int, Query(ge=1, le=2**62)]


async def shown_record(request: Request, credit_code: str, record_id: int) -> dict[str, Any]:
    """The record as the enterprise's report shows it now; UnknownRecord (404) when
    it shows no such record (another enterprise's, unpublished, or none)."""
    report = (await own_cut(request, credit_code, datetime.now(UTC))).report
    for name, section in report["sections"].items():
        for item in section["items"]:
            if name != "loans" and item.get("record_id") == record_id:
                return {**item, "section": name}
    raise disputes.UnknownRecord(f"no record {record_id} in your report")


@router.get(DISPUTES)
async def dispute_list(
    session: PortalSessionDep, engine: EngineDep, lang: LangQuery = "zh", msg: LangQuery = ""
) -> Response:
    page_lang = lang_of(lang)
    async with engine.connect() as conn:
        items = await conn.run_sync(disputes.of_enterprise, session.credit_code, LISTED_MAX)
    main = record_views.dispute_list(page_lang, items, done=msg == "done")
    return page(page_lang, session, TEXT[page_lang]["disputes_title"], main, DISPUTES)


@router.get(DISPUTES + "/new")
async def dispute_form(
    request: Request, session: PortalSessionDep, record_id: RecordQuery, lang: LangQuery = "zh"
) -> Response:
    page_lang = lang_of(lang)
    try:
        item = await shown_record(request, session.credit_code, record_id)
    except ProblemError as refused:
        return error_page(page_lang, refused, DISPUTES)
    main = record_views.dispute_form(page_lang, session.csrf, item)
    return page(page_lang, session, TEXT[page_lang]["dispute_new"], main, DISPUTES)


def _reason(form: dict[str, str]) -> disputes.DisputeIn:
    try:
        return disputes.DisputeIn(reason=form.get("reason", ""))
    except ValidationError:
        raise InvalidValue("reason: 1 to 2000 characters") from None


def _record_id(form: dict[str, str]) -> int:
    value = form.get("record_id", "")
    if not value.isdigit() or len(value) > 18:
        raise InvalidValue("record_id: not a record of your report")
    return int(value)


@router.post(DISPUTES)
async def raise_dispute(
    request: Request, session: PortalSessionDep, engine: EngineDep, lang: LangQuery = "zh"
) -> Response:
    page_lang = lang_of(lang)
    person = session.principal
    try:
        form = await read_form(request, max_bytes=FORM_MAX_BYTES)
        if not csrf_matches(session.csrf, form.get("csrf")):
            raise CsrfRefused("the form's CSRF token is missing or wrong")
        record_id, body = _record_id(form), _reason(form)
        item = await shown_record(request, session.credit_code, record_id)

        def open_one(conn: Connection) -> dict[str, Any]:
            return disputes.open_dispute(conn, person, item["category"], record_id, body)

        async with engine.begin() as conn:
            opened = await conn.run_sync(open_one)
            event = allowed(
                request, person.client_id, orjson.dumps(opened),
                reason=f"dispute {opened['id']} opened by the enterprise's {person.role} (portal)",
                credit_code=person.credit_code,
            )  # fmt: skip
            await record_with(request, conn, event)
    except ProblemError as refused:
        return error_page(page_lang, refused, DISPUTES)
    return RedirectResponse(href(DISPUTES, page_lang, msg="done"), 303, headers=PAGE_HEADERS)
