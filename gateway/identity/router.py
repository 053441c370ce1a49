"""OAuth endpoints: thin; the work is in `service.Identity`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.apidocs import answer_docs, header_docs
from gateway.errors import UnsupportedMediaType, problem_docs
from gateway.identity.dpop import proof_header, verify_proof
from gateway.identity.errors import InvalidRequest
from gateway.identity.schemas import Introspection, Jwks, ServerMetadata, TokenAnswer
from gateway.identity.service import Identity
from gateway.state import state_of

router = APIRouter(tags=["identity"])


async def _identity(request: Request) -> Identity:
    return state_of(request).identity


IdentityDep = Annotated[Identity, Depends(_identity)]
FORM = "application/x-www-form-urlencoded"
_PROBLEMS = problem_docs(
    {
        400: "Malformed request or unsupported grant (RFC 6749 `error` member)",
        401: "Client authentication failed",
        413: "Body too large",
        415: "Body is not application/x-www-form-urlencoded",
    }
)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_NO_STORE_DOCS = {"Cache-Control": "`no-store`", "Pragma": "`no-cache`"}


async def read_form(request: Request) -> dict[str, str]:
    """An OAuth form body; a repeated parameter is an error (RFC 6749 §3.2)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM:
        raise UnsupportedMediaType(f"send {FORM}")
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidRequest("body is not UTF-8") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequest(f"parameter {name} given more than once")
        form[name] = value
    return form


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


async def form_and_proof(
    request: Request, identity: Identity, path: str
) -> tuple[dict[str, str], str | None]:
    """An OAuth POST's form and, when it carries a DPoP proof (checked against the
    issuer's `path`), the proof key's thumbprint: the token endpoint's and PAR's."""
    form = await read_form(request)
    proof = proof_header(request.headers)
    if proof is None:
        return form, None
    url = f"{identity.settings.issuer}{path}"
    return form, await verify_proof(proof, method="POST", url=url, guard=identity.guard)


@router.post(
    "/oauth/token",
    summary="Client credentials grant; private_key_jwt client authentication",
    responses={**answer_docs(TokenAnswer, "An access token", headers=_NO_STORE_DOCS), **_PROBLEMS},
)
async def token(request: Request, identity: IdentityDep) -> Response:
    form, jkt = await form_and_proof(request, identity, "/oauth/token")
    answer = await identity.token(form, jkt, request.headers.get("authorization"))
    return _json(answer, _NO_STORE)


@router.post(
    "/oauth/revoke",
    summary="Revoke an access token (RFC 7009)",
    # An empty body: documented without content.
    response_class=Response,
    responses={
        200: {
            "description": "Revoked, or not a token of this client's (RFC 7009: no error)",
            "headers": header_docs(_NO_STORE_DOCS),
        },
        **_PROBLEMS,
    },
)
async def revoke(request: Request, identity: IdentityDep) -> Response:
    form = await read_form(request)
    await identity.revoke(form, request.headers.get("authorization"))
    return Response(status_code=200, headers=_NO_STORE)


@router.post(
    "/oauth/introspect",
    summary="Introspect an access token (RFC 7662)",
    responses={
        **answer_docs(
            Introspection,
            "The token's claims, or only `active: false`",
            headers=_NO_STORE_DOCS,
        ),
        **_PROBLEMS,
    },
)
async def introspect(request: Request, identity: IdentityDep) -> Response:
    form = await read_form(request)
    answer = await identity.introspect(form, request.headers.get("authorization"))
    return _json(answer, _NO_STORE)


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="RFC 8414 metadata",
    responses=answer_docs(ServerMetadata, "The authorisation server's metadata"),
)
async def metadata(identity: IdentityDep) -> Response:
    return _json(identity.metadata())


@router.get(
    "/.well-known/jwks.json",
    summary="The gateway's public signing keys",
    responses=answer_docs(Jwks, "The live public keys", headers={"Cache-Control": "`max-age=60`"}),
)
async def jwks(identity: IdentityDep) -> Response:
    return _json(await identity.jwks(), {"Cache-Control": "max-age=60"})
