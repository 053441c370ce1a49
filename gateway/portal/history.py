"""The access history page: every entry of the audit trail about the session's
enterprise (access_log's service: allowed and refused reads, by banks, platforms,
departments and the portal itself), newest first, a bounded page at a time by
cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from gateway.access_log import service as access_log
from gateway.deps import EngineDep
from gateway.errors import ProblemError
from gateway.portal import record_views
from gateway.portal.i18n import TEXT
from gateway.portal.web import LangQuery, PortalSessionDep, error_page, page
from gateway.webpages import lang_of

router = APIRouter(tags=["portal"], include_in_schema=False)
HISTORY = "/portal/access-history"
PAGE_SIZE = 50


@router.get(HISTORY)
async def access_history(
    session: PortalSessionDep,
    engine: EngineDep,
    lang: LangQuery = "zh",
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    page_lang = lang_of(lang)
    try:
        before = access_log.parse_cursor(cursor)
        async with engine.connect() as conn:
            found = await conn.run_sync(
                access_log.page, session.credit_code, before=before, limit=PAGE_SIZE
            )
    except ProblemError as refused:
        return error_page(page_lang, refused, HISTORY)
    main = record_views.history(page_lang, found, first=cursor is None)
    return page(page_lang, session, TEXT[page_lang]["history_title"], main, HISTORY)
