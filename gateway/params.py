"""Query parameter types the routers share: strict where FastAPI would coerce.

Pydantic's lax mode reads `changed_since=0.49` as a Unix time; a filter that
means something else than the client wrote must be refused (422), not guessed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Query
from pydantic import AwareDatetime, BeforeValidator

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
