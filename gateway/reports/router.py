from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from sqlalchemy.exc import DBAPIError
from starlette.responses import Response

from gateway.access import report as report_access
from gateway.access.callers import ReportFetcher, ReportReader
from gateway.access.decision import audit_denial
from gateway.apidocs import answer_docs
from gateway.audit.chain import AuditEvent
from gateway.audit.kept import KeptReport
from gateway.audit.service import record, record_allowed, route_of
from gateway.deps import EngineDep, SettingsDep
from gateway.errors import (
    DependencyUnavailable,
    NotAcceptable,
    ProblemError,
    problem_docs,
)
from gateway.identifiers import UnknownEnterprise
from gateway.identity.tokens import Caller
from gateway.keys.store import KeyError_
from gateway.reports import issued, signing
from gateway.reports.build import request_members
from gateway.reports.html import render_html
from gateway.reports.pdf import Printer
from gateway.reports.schemas import COMPACT_JWS, CreditReport
from gateway.reports.service import Cut
from gateway.state import GatewayState, state_of
from policies.consent import StoredConsent

router = APIRouter(tags=["reports"])


async def _printer(request: Request) -> Printer:
    return state_of(request).printer


PrinterDep = Annotated[Printer, Depends(_printer)]
ROUTE = "/v1/enterprises/{credit_code}/credit-report"
JSON, JOSE, HTML, PDF = "application/json", "application/jose", "text/html", "application/pdf"
# The printable page's own policy: its inline stylesheet and nothing else.
_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
_PROBLEMS = problem_docs(
    {
        401: "Missing, invalid, expired or revoked token",
        403: "Token lacks reports:read, or the consent does not allow this (`reason` says why)",
        404: "No such enterprise",
        406: "Accept names none of application/json, application/jose, text/html, application/pdf",
        422: "Not a valid unified social credit code; detail says which character and why",
        429: "A rate limit, daily quota, enterprise cap or consent frequency is reached",
        503: "The store, the rate limiter or the audit trail is unavailable, or too many PDFs "
        "are being rendered (Retry-After); nothing is disclosed",
    }
)


_SINGLE = {JSON: JSON, JOSE: JOSE, HTML: HTML, PDF: PDF, "*/*": JSON}


def negotiate(accept: str | None) -> str:
    """The representation to send, by the client's Accept (q-values honoured)."""
    if not accept:
        return JSON
    exact = _SINGLE.get(accept)
    if exact is not None:  # what nearly every client sends: nothing to weigh
        return exact
    best, best_q = None, 0.0
    for part in accept.split(",")[:20]:
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        chosen = {
            JSON: JSON, JOSE: JOSE, HTML: HTML, PDF: PDF, "application/*": JSON, "*/*": JSON,
            "text/*": HTML,
        }.get(media)  # fmt: skip
        if chosen and q > best_q:
            best, best_q = chosen, q
    if best is None:
        raise NotAcceptable(
            "send Accept: application/json, application/jose, text/html or application/pdf"
        )
    return best


@router.get(
    ROUTE,
    summary="The SME credit report, under a consent",
    description=(
        "Needs `reports:read` and a live consent for this bank and enterprise in the "
        "`Consent-Id` header. Only the sections the consent covers are returned. "
        "`Accept: application/json` gives the report with `signature`, a detached JWS "
        "over the report's RFC 8785 canonical JSON without that member; "
        "`Accept: application/jose` gives one compact JWS; `text/html` and `application/pdf` "
        "the printable report (Chinese, yuan, Beijing time, a summary box at the top). "
        "Verify with the keys at `/.well-known/jwks.json`."
    ),
    responses={
        **answer_docs(
            CreditReport,
            "The report, as the Accept header asked",
            headers={"Cache-Control": "`no-store`", "Vary": "`Accept`"},
            other_media={
                JOSE: {
                    "schema": {
                        "type": "string",
                        "pattern": COMPACT_JWS,
                        "description": (
                            "Compact JWS, protected header `{alg, kid, typ: "
                            "xyd-credit-report+jws}`; its payload is the report (as "
                            "`application/json` without `signature`) in RFC 8785 canonical JSON"
                        ),
                    }
                },
                HTML: {"schema": {"type": "string", "description": "The printable report"}},
                PDF: {
                    "schema": {
                        "type": "string",
                        "format": "binary",
                        "description": "The printable report as PDF, from the same page",
                    }
                },
            },
        ),
        **_PROBLEMS,
    },
    openapi_extra={
        "parameters": [
            {"name": "credit_code", "in": "path", "required": True,
             "schema": {"type": "string", "title": "Credit Code"}},
            {"name": "Consent-Id", "in": "header", "required": False,
             "schema": {"type": "string", "maxLength": 64, "title": "Consent-Id"}},
        ]
    },
)  # fmt: skip
async def credit_report(request: Request, caller: ReportFetcher) -> Response:
    # The path and header are read here rather than declared as parameters:
    # FastAPI's parameter validation cost more than the rest of this route's
    # own work (profiled); `openapi_extra` documents them instead.
    media = negotiate(request.headers.get("accept"))
    code = await report_access.credit_code(request, caller)
    consent_id = await report_access.token_consent(
        request, caller, report_access.consent_id(request)
    )
    state = state_of(request)
    now = datetime.now(UTC)
    # A busy printer refuses before the gate: nothing is spent on a refusal.
    with state.printer.slot() if media == PDF else nullcontext():
        consent, sections, version = await report_access.admit(
            request, caller, state.reports, consent_id, code, state.reports.wanted, now
        )
        shared = await _shared_cut(request, caller, state, code, consent, sections, version, now)
        report = await issue(
            state, shared, code, media, now, client_id=caller.client_id,
            org_code=caller.org_code, consent_id=consent.id, purpose=consent.purpose,
        )  # fmt: skip
        await record_allowed(
            request,
            caller.client_id,
            report.body,
            credit_code=code,
            consent_id=consent.id,
            purpose=consent.purpose,
            kept=report.kept,
        )
    return answer(report.body, media, report.kept.report_id)


async def _shared_cut(
    request: Request,
    caller: Caller,
    state: GatewayState,
    code: str,
    consent: StoredConsent,
    sections: frozenset[str],
    version: int,
    now: datetime,
) -> Cut:
    """The report every consent with these sections shares: built (or cached), cut."""
    try:
        full = await state.reports.full_report(state.engine, code, version, now)
    except (DBAPIError, OSError) as exc:
        raise DependencyUnavailable("the credit store is unavailable") from exc
    if full is None:
        gone = UnknownEnterprise(f"no enterprise with credit code {code}")
        await audit_denial(request, caller, gone, consent_id=consent.id, purpose=consent.purpose)
        raise gone
    return state.reports.cut(full, sections)


@dataclass(frozen=True, slots=True)
class Issued:
    body: bytes
    kept: KeptReport  # what the audit trail keeps of it, for GET /v1/reports/{id}


async def issue(
    state: GatewayState,
    shared: Cut,
    code: str,
    media: str,
    now: datetime,
    *,
    client_id: str,
    org_code: str | None,
    consent_id: str | None,
    purpose: str,
) -> Issued:
    """The shared cut with this request's own members (its recipient, consent and
    purpose), signed, in the media asked for: a bank's report, or the enterprise's
    own (`self_query`, no consent) on the portal."""
    report_id = issued.new_report_id()
    own = request_members(
        consent_id=consent_id,
        purpose=purpose,
        report_id=report_id,
        generated_at=now,
        client_id=client_id,
        org_code=org_code,
        stale_at=shared.stale_at,
    )
    own_members = signing.members(own)
    try:
        key = (await state.identity.keys.current()).signing_key("report", now)
    except KeyError_ as exc:
        raise DependencyUnavailable("no report-signing key is available") from exc
    if media == JSON:
        body, signature = signing.signed_json({**shared.head, **own_members}, shared.tail, key)
    else:
        payload = signing.joined({**shared.members, **own_members})
        if media == JOSE:
            compact = signing.compact(payload, key)
            body, signature = compact.encode("ascii"), signing.detached_of(compact)
        else:
            signature = signing.detached(payload, key)
            page = render_html({**shared.report, **own}, signature=signature)
            body = await state.printer.pdf(page) if media == PDF else page.encode()
    kept = KeptReport(
        report_id=report_id,
        client_id=client_id,
        credit_code=code,
        cut_sha256=shared.sha256,
        cut=shared.canonical,
        own=signing.joined(own_members),
        signature=signature,
        issued_at=now,
    )
    return Issued(body, kept)


_CONTENT_TYPES = {JSON: JSON, JOSE: JOSE, HTML: "text/html; charset=utf-8", PDF: PDF}


def answer(body: bytes, media: str, report_id: str) -> Response:
    headers = {"Cache-Control": "no-store", "Vary": "Accept"}
    if media == HTML:
        headers["Content-Security-Policy"] = _PAGE_CSP
    elif media == PDF:
        headers["Content-Disposition"] = f'inline; filename="{report_id}.pdf"'
    return Response(body, media_type=_CONTENT_TYPES[media], headers=headers)


_AGAIN_PROBLEMS = problem_docs(
    {
        401: "Missing, invalid, expired or revoked token",
        403: "Token lacks reports:read",
        404: (
            "No report with this id was issued to this client, or it is past the retention "
            "period: the same answer whichever it is"
        ),
        406: "Accept names none of application/json, application/jose, text/html, application/pdf",
        429: "A rate limit or daily quota is reached",
        503: "The store or the audit trail is unavailable; nothing is disclosed",
    }
)


@router.get(
    "/v1/reports/{report_id}",
    summary="A report again, exactly as it was issued",
    description=(
        "Needs `reports:read`; only the client the report was issued to (its `recipient`) "
        "gets it, for `XYD_REPORT_RETENTION_DAYS` after `generated_at`. "
        "`Accept: application/json` gives the same bytes as the first answer in that form "
        "(the report with its `signature`); `application/jose` the compact JWS of the same "
        "report with the same signature (the same bytes as a first answer in that form); "
        "`text/html` prints the report again. Every request is audited. A report issued to "
        "another client, an unknown id and an expired report are all the same 404."
    ),
    responses={
        **answer_docs(
            CreditReport,
            "The report as first issued, as the Accept header asked",
            headers={"Cache-Control": "`no-store`", "Vary": "`Accept`"},
            other_media={
                JOSE: {"schema": {"type": "string", "pattern": COMPACT_JWS}},
                HTML: {"schema": {"type": "string", "description": "A printable page"}},
                PDF: {"schema": {"type": "string", "format": "binary"}},
            },
        ),
        **_AGAIN_PROBLEMS,
    },
)
async def report_again(
    request: Request,
    report_id: str,
    caller: ReportReader,
    engine: EngineDep,
    settings: SettingsDep,
    printer: PrinterDep,
) -> Response:
    try:
        media = negotiate(request.headers.get("accept"))
    except ProblemError as denial:
        await audit_denial(request, caller, denial)
        raise
    now = datetime.now(UTC)
    retention = timedelta(days=settings.report_retention_days)
    try:
        found = await issued.find_for(engine, report_id, caller.client_id, now, retention)
    except (DBAPIError, OSError) as exc:
        raise DependencyUnavailable("the credit store is unavailable") from exc
    if isinstance(found, issued.Refused):
        # The reason goes to the audit trail only: the answer is the same for all.
        await _audit_refusal(request, caller, found)
        raise issued.ReportNotFound(issued.NOT_FOUND)
    parts = issued.parts(found)
    if media == JSON:
        body = signing.json_again(parts, found.signature)
    else:
        payload = signing.joined(parts)
        if media == JOSE:
            body = signing.compact_again(payload, found.signature)
        else:
            report: dict[str, Any] = {name: orjson.loads(value) for name, value in parts.items()}
            page = render_html(report, signature=found.signature)
            if media == PDF:
                with printer.slot():
                    body = await printer.pdf(page)
            else:
                body = page.encode()
    own = orjson.loads(found.own)
    await record_allowed(
        request,
        caller.client_id,
        body,
        reason=f"report:{found.report_id}",
        credit_code=found.credit_code,
        consent_id=own.get("consent_id"),
        purpose=own.get("purpose"),
    )
    return answer(body, media, found.report_id)


async def _audit_refusal(request: Request, caller: Caller, refused: issued.Refused) -> None:
    """Who asked for which enterprise's report (when it exists) and why it was
    refused: the enterprise's access log shows another bank's attempt."""
    await record(
        request,
        AuditEvent(
            client_id=caller.client_id,
            route=route_of(request),
            decision="deny",
            reason=f"report-not-found:{refused.why}",
            credit_code=refused.credit_code,
        ),
    )
