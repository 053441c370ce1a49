"""Reports again: `GET /v1/reports/{report_id}` sends a bank the bytes it was sent.

A report is kept with its audit entry (gateway/audit/kept.py) as its cut, its
own members and its signature. Either signed form is rebuilt from those byte
for byte: the `application/json` answer as first sent, and the compact JWS
(`application/jose`) carrying the same signature, which is the one first sent
when the report was asked for that way. `text/html` is printed again from the
same report and signature.

Only the recipient may read it, within `report_retention_days` of its issue;
anyone else, an unknown id and an expired report get the same 404, so a
report's existence does not leak. The audit entry says which it was.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import kept
from gateway.audit.kept import Issued
from gateway.errors import NotFound
from gateway.reports import signing

# 96 random bits: not guessable, and an id alone grants nothing anyway.
REPORT_ID = re.compile(r"^rpt_[A-Za-z0-9_-]{16}$")


def new_report_id() -> str:
    return f"rpt_{secrets.token_urlsafe(12)}"


class ReportNotFound(NotFound):
    type_slug, title = "report-not-found", "No such report"


NOT_FOUND = "no report with this id was issued to this client within the retention period"


@dataclass(frozen=True, slots=True)
class Refused:
    why: str  # unknown | other_recipient | past_retention: for the audit entry only
    credit_code: str | None  # known when the report exists: its enterprise's access log


async def find_for(
    engine: AsyncEngine, report_id: str, client_id: str, now: datetime, retention: timedelta
) -> Issued | Refused:
    """The kept report if `client_id` may have it again now, else why not."""
    if not REPORT_ID.match(report_id):
        return Refused("unknown", None)
    found = await kept.find(engine, report_id)
    if found is None:
        return Refused("unknown", None)
    if found.client_id != client_id:
        return Refused("other_recipient", found.credit_code)
    if found.issued_at < now - retention:
        return Refused("past_retention", found.credit_code)
    return found


def parts(issued: Issued) -> signing.Members:
    """The report's members as canonical JSON, as they were signed: a canonical
    document parsed and written again gives the same bytes (no floats)."""
    return signing.members(kept.as_members(issued))
