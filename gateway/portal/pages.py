"""The portal's landing page and its consents page: every consent for the
session's enterprise, whatever its channel, and revocation after one
confirmation, through the consents service (audited, the change mark set first
so every worker's next decision sees it, the bank's `consent.revoked` webhook
queued in the same transaction)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import RedirectResponse, Response

from gateway.access.marks import mark_changed
from gateway.audit.service import allowed, record_with
from gateway.consents import service as consents
from gateway.deps import EngineDep, RedisDep
from gateway.errors import ProblemError
from gateway.portal import repository, views
from gateway.portal.i18n import TEXT
from gateway.portal.web import HOME, LangQuery, PortalSessionDep, error_page, page
from gateway.reports.router import ROUTE as REPORT_ROUTE
from gateway.webpages import PAGE_HEADERS, CsrfRefused, csrf_matches, lang_of, read_form

router = APIRouter(tags=["portal"], include_in_schema=False)
CONSENTS = "/portal/consents"
MAX_LISTED = 500
REVOKE_REASON = "revoked by the enterprise on the portal"


@router.get(HOME)
async def home(session: PortalSessionDep, lang: LangQuery = "zh") -> Response:
    page_lang = lang_of(lang)
    return page(page_lang, session, TEXT[page_lang]["title"], views.welcome(page_lang), HOME)


def _items(conn: Connection, credit_code: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    used = repository.times_used(conn, credit_code, f"GET {REPORT_ROUTE}")
    return [
        {
            "id": row.id,
            "bank_name": row.bank_name or row.grantee_client_id,
            "purpose": row.purpose,
            "scopes": list(row.scopes),
            "channel": row.channel,
            "valid_from": row.valid_from,
            "valid_until": row.valid_until,
            "status": consents.status_of(row, now),
            "times_used": used.get(row.id, 0),
        }
        for row in repository.enterprise_consents(conn, credit_code, MAX_LISTED)
    ]


@router.get(CONSENTS)
async def consents_page(
    session: PortalSessionDep, engine: EngineDep, lang: LangQuery = "zh", msg: LangQuery = ""
) -> Response:
    page_lang = lang_of(lang)
    async with engine.connect() as conn:
        items = await conn.run_sync(_items, session.credit_code)
    t = TEXT[page_lang]
    flash = f'<p class="flash" role="status">{views.esc(t["revoked"])}</p>' if msg == "done" else ""
    main = flash + views.consent_rows(page_lang, items)
    return page(page_lang, session, t["consents_title"], main, CONSENTS)


def _one(conn: Connection, credit_code: str, consent_id: str) -> dict[str, Any]:
    """The enterprise's consent, or UnknownConsent (404) for any other."""
    found = [item for item in _items(conn, credit_code) if item["id"] == consent_id]
    if not found:
        raise consents.UnknownConsent(f"no consent {consent_id[:40]}")
    return found[0]


@router.get(CONSENTS + "/{consent_id}/revoke")
async def revoke_confirmation(
    consent_id: str, session: PortalSessionDep, engine: EngineDep, lang: LangQuery = "zh"
) -> Response:
    page_lang = lang_of(lang)
    try:
        async with engine.connect() as conn:
            item = await conn.run_sync(_one, session.credit_code, consent_id[:64])
    except ProblemError as refused:
        return error_page(page_lang, refused, CONSENTS)
    main = views.revoke_confirmation(page_lang, session, item)
    return page(page_lang, session, TEXT[page_lang]["revoke_title"], main, CONSENTS)


@router.post(CONSENTS + "/{consent_id}/revoke")
async def revoke(
    consent_id: str,
    request: Request,
    session: PortalSessionDep,
    engine: EngineDep,
    redis: RedisDep,
    lang: LangQuery = "zh",
) -> Response:
    page_lang = lang_of(lang)
    form = await read_form(request)
    if not csrf_matches(session.csrf, form.get("csrf")):
        return error_page(page_lang, CsrfRefused("the form's CSRF token is missing or wrong"))
    person = session.principal
    try:
        if len(consent_id) > 64:
            raise consents.UnknownConsent("no such consent")
        # Marked before it commits: once this answers, no worker grants from its copy.
        await mark_changed(redis, consent_id)
        async with engine.begin() as conn:
            consent = await conn.run_sync(consents.revoke, person, consent_id, REVOKE_REASON)
            event = allowed(
                request, person.client_id, orjson.dumps(consent),
                reason=f"consent revoked by the enterprise's {person.role} (portal)",
                credit_code=consent["credit_code"], consent_id=consent["id"],
                purpose=consent["purpose"],
            )  # fmt: skip
            await record_with(request, conn, event)
    except ProblemError as refused:
        return error_page(page_lang, refused, CONSENTS)
    return RedirectResponse(views.href(CONSENTS, page_lang, msg="done"), 303, headers=PAGE_HEADERS)
