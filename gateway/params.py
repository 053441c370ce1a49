"""Request parameter types the routers share: strict where FastAPI would coerce.

Pydantic's lax mode reads `changed_since=0.49` as a Unix time; a filter that
means something else than the client wrote must be refused (422), not guessed.
FastAPI reads a form posted to a JSON route as an invalid value (422); the
spec says the media type is wrong (415): `JsonOnly`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import AwareDatetime, BeforeValidator

from gateway.errors import UnsupportedMediaType

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)


def _rfc3339_text(value: Any) -> Any:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("an RFC 3339 date-time with its offset, e.g. 2026-11-27T10:00:00+08:00")
    return value


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]

# The shape of a unified social credit code; its check characters are verified
# by `checked_code` (422 naming the fault).
CreditCodeQuery = Annotated[
    str | None, Query(min_length=18, max_length=18, pattern=r"^[0-9A-HJ-NP-RTUW-Y]{18}$")
]


def _json_media(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        return  # FastAPI reads an unlabelled body as JSON; so do we
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    raise UnsupportedMediaType(f"send the body as application/json, not {media[:100]!r}")


# After the caller's parameter: an unauthenticated request is 401 whatever it sends.
JsonOnly = Annotated[None, Depends(_json_media)]
JSON_ONLY_DOC = {415: "The body is not application/json"}
