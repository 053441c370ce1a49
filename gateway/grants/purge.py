"""The code flow's spent secrets purged, a bounded batch a round, off the request path.

What is kept, and for how long (`XYD_OAUTH_SPENT_RETENTION_S`, R):

- a pushed request: until it expires. After that it cannot be approved, and a
  request_uri the store no longer holds is refused the same way;
- an authorisation code never redeemed: until it expires, for the same reason;
- a redeemed code: while a second use could still revoke something, i.e. while
  the access token it issued is live or its refresh family has a live token
  (possibly the consent's whole validity), and at least R after its use;
- a refresh token: while its family lives (a rotated token presented again is
  how a stolen one is found), and R after the family ended (expired with the
  consent, or revoked).

The decisions themselves (approve, decline, each token issued) are in the audit
trail, which this never touches. Each table loses at most `limit` rows a round,
all in one transaction; two workers purging at once delete disjoint or no rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection

from gateway.grants import repository


class Purged(NamedTuple):
    requests: int
    codes: int
    refresh_tokens: int


def purge_spent(
    conn: Connection, limit: int, retention: timedelta, now: datetime | None = None
) -> Purged:
    """One round: at most `limit` rows from each of the three tables; how many went."""
    now = now or datetime.now(UTC)
    return Purged(
        repository.purge_requests(conn, now, limit),
        repository.purge_codes(conn, now, now - retention, limit),
        repository.purge_refresh_tokens(conn, now - retention, limit),
    )
