"""`GET /oauth/authorize`: the consent page the enterprise's person reads, and
`POST /oauth/authorize`: their decision (spec "Enterprise-granted consent").

Not logged in, the browser goes to the login and comes back. The page shows
the bank, purpose, sections, validity and daily limit; the decision's form
carries the session's CSRF token. Approve or decline answers 302 to the URL
`CodeFlow` returns (the bank's registered redirect URI); every refusal (an
unknown, used or expired request_uri, a person of another enterprise, a bad
CSRF token) is a page with its 4xx, never a redirect.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import RedirectResponse, Response

from gateway.consents.principal import PortalPrincipal
from gateway.errors import BadRequest, ProblemError
from gateway.grants.service import AUTHORIZE_ROUTE, CodeFlow, OtherEnterprise, UnknownRequest
from gateway.portal import views
from gateway.portal.i18n import REFUSALS, word
from gateway.portal.sessions import PortalSession
from gateway.portal.web import HOME, LangQuery, error_page, html, login_url, session_of
from gateway.state import state_of
from gateway.webpages import CsrfRefused, Lang, csrf_matches, lang_of, page_headers, read_form

router = APIRouter(tags=["portal"], include_in_schema=False)
ClientIdQuery = Annotated[str, Query(max_length=64)]
RequestUriQuery = Annotated[str, Query(max_length=200)]


async def _code_flow(request: Request) -> CodeFlow:
    return state_of(request).code_flow


CodeFlowDep = Annotated[CodeFlow, Depends(_code_flow)]


async def _terms_block(
    flow: CodeFlow, lang: Lang, request_uri: str, client_id: str, person: PortalPrincipal
) -> tuple[str, str]:
    """The terms as the page shows them, and where the decision will send the browser."""
    pending = await flow.pending(request_uri, client_id, person)
    client = await flow.identity.client(client_id)
    name = client.display_name if client is not None else client_id
    terms = views.Terms.of(name, client_id, pending["authorization_details"][0])
    return views.terms_block(lang, terms), str(pending["redirect_uri"])


_REFUSAL_KEYS: dict[type[ProblemError], str] = {
    UnknownRequest: "request_gone",
    OtherEnterprise: "other_enterprise",
}
# Where logging in again can help: another person's login, or a lapsed one.
_LOGIN_HELPS = frozenset({"other_enterprise", "session_ended", "form_stale"})


def _refused(lang: Lang, refused: ProblemError, key: str | None = None) -> Response:
    """A refusal as a page the person reads: what happened and what to do, with
    the refusal's status; one this page does not expect keeps its own detail."""
    key = key or _REFUSAL_KEYS.get(type(refused))
    if key is None:
        return error_page(lang, refused)
    message = word(REFUSALS, lang, key)
    back = views.href(HOME, lang)
    return html(
        views.error_document(lang, message, back, login=key in _LOGIN_HELPS), refused.status
    )


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


@router.get(AUTHORIZE_ROUTE)
async def consent_page(
    request: Request,
    flow: CodeFlowDep,
    client_id: ClientIdQuery = "",
    request_uri: RequestUriQuery = "",
    lang: LangQuery = "zh",
) -> Response:
    page_lang = lang_of(lang)
    if not client_id or not request_uri:
        missing = BadRequest("client_id and request_uri are required")
        return _refused(page_lang, missing, "incomplete_link")
    session = await session_of(request)
    if session is None:
        here = views.href(AUTHORIZE_ROUTE, page_lang, client_id=client_id, request_uri=request_uri)
        return RedirectResponse(login_url(here, page_lang), 303, headers=page_headers())
    try:
        block, redirect_uri = await _terms_block(
            flow, page_lang, request_uri, client_id, session.principal
        )
    except ProblemError as refused:
        return _refused(page_lang, refused)
    document = views.consent_page(page_lang, session, block, client_id, request_uri)
    # The decision's answer redirects to the bank: its origin is a form target.
    return html(document, headers=page_headers(_origin(redirect_uri)))


@router.post(AUTHORIZE_ROUTE)
async def decide(request: Request, flow: CodeFlowDep) -> Response:
    form = await read_form(request)
    page_lang = lang_of(form.get("lang"))
    session: PortalSession | None = await session_of(request)
    if session is None:
        ended = CsrfRefused("your portal session has ended; log in again")
        return _refused(page_lang, ended, "session_ended")
    if not csrf_matches(session.csrf, form.get("csrf")):
        stale = CsrfRefused("the form's CSRF token is missing or wrong")
        return _refused(page_lang, stale, "form_stale")
    client_id, request_uri = form.get("client_id", ""), form.get("request_uri", "")
    decision = form.get("decision")
    try:
        if decision not in ("approve", "decline") or not 0 < len(client_id) <= 64:
            raise BadRequest("decision must be approve or decline, for a client_id")
        if decision == "decline":
            location = await flow.decline(request_uri, client_id, session.principal)
        else:
            block, _ = await _terms_block(
                flow, page_lang, request_uri, client_id, session.principal
            )
            location = await flow.approve(
                request_uri, client_id, session.principal,
                shown_sha256=views.shown_sha256(block),
            )  # fmt: skip
    except ProblemError as refused:
        return _refused(page_lang, refused)
    return RedirectResponse(location, 302, headers={"Cache-Control": "no-store"})
