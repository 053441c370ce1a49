"""Today's admitted reports, counted from the audit trail.

The rate limiter's daily counts live in Redis (or a process's memory); the
trail has every admitted request as an `allow` entry. When the counts are
lost (Redis lost its data, an embedded gateway restarted) they are rebuilt
from here before anything is admitted by them, so a client at its daily
limit stays refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from gateway.audit import repository
from policies.rate import DAY_S, SHANGHAI_OFFSET_S, bank_key, count_keys

# Entries take their time before the chain's lock: a later entry may carry an
# earlier time by as much as a batch's wait. Searching from a minute earlier
# finds every entry of the day.
_SLACK = timedelta(minutes=1)


def day_start(day: int) -> datetime:
    """The start of Shanghai day number `day`, in UTC."""
    return datetime.fromtimestamp(day * DAY_S - SHANGHAI_OFFSET_S, UTC)


def admitted_reports(conn: Connection, day: int, reports: Mapping[str, int]) -> dict[str, int]:
    """The reports counted on Shanghai day `day`, by `policies.rate.count_keys`
    name: each `allow` entry of a route in `reports` (route → reports it
    charges) counts for its client, enterprise, consent and (bank, enterprise)."""
    if not reports:
        return {}
    start = day_start(day)
    first = _first_seq_from(conn, (start - _SLACK).isoformat(timespec="microseconds"))
    if first is None:
        return {}
    rows = repository.allowed_counts(conn, first, reports, start, start + timedelta(days=1))
    orgs = repository.org_codes(conn, {row.client_id for row in rows})
    counts: Counter[str] = Counter()
    for client_id, credit_code, consent_id, route, entries in rows:
        bank = bank_key(client_id, orgs.get(client_id))
        for key in count_keys(client_id, credit_code, consent_id, bank):
            counts[key] += entries * reports[route]
    return dict(counts)


def _first_seq_from(conn: Connection, at: str) -> int | None:
    """The first entry at or after `at`, by a binary search on the sequence:
    entry times rise with it, so the day is found in some forty reads of the
    primary key, however long the trail."""
    low, high = repository.seq_bounds(conn)
    if low is None or high is None:
        return None
    found = None
    while low <= high:
        middle = (low + high) // 2
        row = repository.first_from(conn, middle)
        if row is None or row.at < at:
            low = middle + 1
        else:
            found = row.seq
            high = middle - 1
    return found
