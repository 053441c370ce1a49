"""My report: the enterprise's own credit report (purpose `self_query`), free.

It is built, cut, signed and rendered by the reports feature as a bank's report
is (`reports.router.issue`, the printable page of `reports/html.py`), with every
section and no consent: the recipient is the portal (`client_id` `portal`, the
enterprise's own code as `org_code`). It passes no gate, so no bank's rate plan,
daily quota or the enterprise's daily cap is charged; each view is audited once
as the enterprise's self query (`purpose` `self_query`, on its own route, which
the rate counts rebuilt from the trail never read).

Pages: `/portal/report` (the report's records in the portal's layout, each with
its dispute state and a link to dispute it), `/portal/report/print` (the
printable page, its own CSP) and `/portal/report.json` (the signed JSON, as a
download).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.audit.service import record_allowed
from gateway.errors import ProblemError
from gateway.identifiers import UnknownEnterprise
from gateway.portal import record_views
from gateway.portal.i18n import TEXT
from gateway.portal.sessions import PortalSession
from gateway.portal.web import LangQuery, PortalSessionDep, error_page, page
from gateway.reports.router import HTML, JSON, Issued, answer, issue
from gateway.reports.service import Cut
from gateway.state import state_of
from gateway.webpages import lang_of

router = APIRouter(tags=["portal"], include_in_schema=False)
REPORT = "/portal/report"
SELF_QUERY = "self_query"


async def own_cut(request: Request, credit_code: str, now: datetime) -> Cut:
    """The enterprise's whole report (every section) for its current data version."""
    reports = state_of(request).reports
    (_, version), _ = await reports.consent_and_version(None, credit_code, copy_ok=False)
    full = None
    if version is not None:
        full = await reports.full_report(state_of(request).engine, credit_code, version, now)
    if full is None:
        raise UnknownEnterprise(f"no enterprise with credit code {credit_code}")
    return reports.cut(full, reports.wanted)


async def _audited(request: Request, session: PortalSession, body: bytes, what: str) -> None:
    person = session.principal
    await record_allowed(
        request, person.client_id, body, reason=f"self query ({what}) by the enterprise's "
        f"{person.role}", credit_code=person.credit_code, purpose=SELF_QUERY,
    )  # fmt: skip


async def _issued(request: Request, session: PortalSession, media: str) -> Issued:
    now = datetime.now(UTC)
    shared = await own_cut(request, session.credit_code, now)
    person = session.principal
    report = await issue(
        state_of(request), shared, session.credit_code, media, now,
        client_id=person.client_id, org_code=person.org_code, consent_id=None, purpose=SELF_QUERY,
    )  # fmt: skip
    await _audited(request, session, report.body, "printable" if media == HTML else "signed JSON")
    return report


@router.get(REPORT)
async def my_report(
    request: Request, session: PortalSessionDep, lang: LangQuery = "zh"
) -> Response:
    page_lang = lang_of(lang)
    try:
        shared = await own_cut(request, session.credit_code, datetime.now(UTC))
        await _audited(request, session, shared.canonical, "portal page")
    except ProblemError as refused:
        return error_page(page_lang, refused)
    report: dict[str, Any] = shared.report
    main = record_views.report(page_lang, report)
    return page(page_lang, session, TEXT[page_lang]["report_title"], main, REPORT)


@router.get(REPORT + "/print")
async def printable(
    request: Request, session: PortalSessionDep, lang: LangQuery = "zh"
) -> Response:
    try:
        report = await _issued(request, session, HTML)
    except ProblemError as refused:
        return error_page(lang_of(lang), refused, REPORT)
    return answer(report.body, HTML, report.kept.report_id)


@router.get(REPORT + ".json")
async def signed_json(
    request: Request, session: PortalSessionDep, lang: LangQuery = "zh"
) -> Response:
    try:
        report = await _issued(request, session, JSON)
    except ProblemError as refused:
        return error_page(lang_of(lang), refused, REPORT)
    response = answer(report.body, JSON, report.kept.report_id)
    response.headers["Content-Disposition"] = f'attachment; filename="{report.kept.report_id}.json"'
    return response
