"""The change feed behind both live streams: each change once, a change committed
late (a lower revision than one already sent) still sent, and never stuck."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, update

from gateway.alerts.service import ChangeFeed, apply_finding
from gateway.store.tables import alerts
from policies.risk.base import Finding


def raise_alert(engine: Engine, n: int, revision: int) -> str:
    finding = Finding("overdue_default", "high", f"loan:kechuangtong:L{n}", "逾期", (f"e{n}",))
    with engine.begin() as conn:
        alert_id = apply_finding(conn, finding, datetime.now(UTC))[0]
        conn.execute(update(alerts).where(alerts.c.id == alert_id).values(revision=revision))
    return alert_id


def test_each_change_once_and_a_late_commit_still_sent(engine: Engine) -> None:
    feed = ChangeFeed(cursor=10_000_000)
    first = raise_alert(engine, 1, 10_500_000)
    with engine.connect() as conn:
        assert [a["id"] for a in feed.take(conn)] == [first]
        assert feed.take(conn) == []  # nothing new: nothing again
    # Another worker's change, stamped before the cursor but committed after it.
    late = raise_alert(engine, 2, 10_400_000)
    with engine.connect() as conn:
        assert [a["id"] for a in feed.take(conn)] == [late]
        assert feed.take(conn) == []


def test_a_full_page_already_sent_does_not_stall_the_feed(engine: Engine) -> None:
    feed = ChangeFeed(cursor=10_000_000, page=3)
    sent = [raise_alert(engine, n, 10_000_000 + n) for n in range(1, 5)]
    with engine.connect() as conn:
        assert [a["id"] for a in feed.take(conn)] == sent
    newer = raise_alert(engine, 9, 10_000_100)
    with engine.connect() as conn:
        assert [a["id"] for a in feed.take(conn)] == [newer]
