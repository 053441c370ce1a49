"""All SQL of the dashboard: what it reads (the alert list as officers work it,
worst first; open counts, chart series and an alert's evidence events), and
the accounts and sessions behind its login (accounts.py's rows). Sync
functions on a `Connection` inside the caller's transaction; they never
commit."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, case, delete, func, insert, or_, select, update

from gateway.alerts.service import STATUSES, render
from gateway.monitor.bus import decode
from gateway.monitor.worker import DEAD_LETTERS
from gateway.store.tables import (
    alerts,
    dashboard_sessions,
    dashboard_users,
    enterprises,
    loans,
    monitor_events,
    platform_dead_letters,
    repair_applications,
)
from policies.risk.base import SEVERITIES

CHENGDU = ZoneInfo("Asia/Shanghai")
LIST_LIMIT = 200
CHART_DAYS = 14
# Loan statuses that mean money went out, and the live ones among them.
_LENT = ("disbursed", "overdue", "defaulted", "settled")
_LIVE = ("disbursed", "overdue", "defaulted")
_LATE = ("overdue", "defaulted")
STATUS_FILTERS = ("open", "acknowledged", "resolved", "active", "all")


@dataclass(frozen=True)
class Filters:
    status: str = "open"
    severity: str = ""
    rule: str = ""
    credit_code: str = ""

    def matches(self, alert: dict[str, Any]) -> bool:
        if self.status == "active":
            status_ok = alert["status"] != "resolved"
        else:
            status_ok = self.status == "all" or alert["status"] == self.status
        return (
            status_ok
            and (not self.severity or alert["severity"] == self.severity)
            and (not self.rule or alert["rule"] == self.rule)
            and (not self.credit_code or alert["credit_code"] == self.credit_code)
        )

    def query(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


def filters_of(status: str, severity: str, rule: str, credit_code: str) -> Filters:
    """Unknown values widen to "any" rather than fail: these come from a link or a form."""
    return Filters(
        status=status if status in STATUS_FILTERS else "open",
        severity=severity if severity in SEVERITIES else "",
        rule=rule if rule.replace("_", "").isalnum() else "",
        credit_code=credit_code.upper() if credit_code.isalnum() else "",
    )


def _where(filters: Filters) -> list[Any]:
    clauses: list[Any] = []
    if filters.status == "active":
        clauses.append(alerts.c.state != "resolved")
    elif filters.status in STATUSES:
        clauses.append(alerts.c.state == filters.status)
    if filters.severity:
        clauses.append(alerts.c.severity == filters.severity)
    if filters.rule:
        clauses.append(alerts.c.rule == filters.rule)
    if filters.credit_code:
        clauses.append(alerts.c.credit_code == filters.credit_code)
    return clauses


_RANK = case({s: n for n, s in enumerate(SEVERITIES)}, value=alerts.c.severity, else_=-1)


def alert_list(
    conn: Connection, filters: Filters, limit: int = LIST_LIMIT
) -> tuple[list[dict[str, Any]], int]:
    """(the worst and newest first, up to `limit`; how many match in all)."""
    where = _where(filters)
    rows = conn.execute(
        select(alerts)
        .where(*where)
        .order_by(_RANK.desc(), alerts.c.last_seen_at.desc(), alerts.c.id)
        .limit(limit)
    )
    items = [render(conn, r, with_history=False) for r in rows]
    total = conn.execute(select(func.count()).select_from(alerts).where(*where)).scalar_one()
    return items, int(total)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    event_id: str
    kind: str
    reason: str
    at: datetime


def dead_letters(conn: Connection, limit: int = 10) -> tuple[int, list[DeadLetter]]:
    """The monitor's dead-lettered events: how many, and the latest `limit`."""
    mine = platform_dead_letters.c.platform == DEAD_LETTERS
    total = conn.execute(select(func.count()).where(mine)).scalar_one()
    rows = conn.execute(
        select(platform_dead_letters)
        .where(mine)
        .order_by(platform_dead_letters.c.id.desc())
        .limit(limit)
    )
    items = []
    for row in rows:
        event_id, kind = "?", "?"
        with contextlib.suppress(ValueError, KeyError, TypeError):  # kept whole, whatever it was
            event = decode(row.raw)
            event_id, kind = event.id, str(event.kind)
        items.append(DeadLetter(event_id, kind, row.reason, row.received_at))
    return int(total), items


def latest_revision(conn: Connection) -> int:
    return int(conn.execute(select(func.max(alerts.c.revision))).scalar() or 0)


def open_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(alerts.c.severity, func.count())
        .where(alerts.c.state == "open")
        .group_by(alerts.c.severity)
    )
    found = {str(s): int(n) for s, n in rows}
    return {s: found.get(s, 0) for s in SEVERITIES}


def alerts_per_day(
    conn: Connection, today: date, days: int = CHART_DAYS
) -> tuple[list[str], dict[str, list[int]]]:
    """(Chengdu days oldest first, rule -> new alerts on each day)."""
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=CHENGDU)
    labels = [(first + timedelta(days=n)).isoformat() for n in range(days)]
    index = {day: n for n, day in enumerate(labels)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    rows = conn.execute(
        select(alerts.c.rule, alerts.c.first_seen_at).where(alerts.c.first_seen_at >= since)
    )
    for rule, seen in rows:
        n = index.get(seen.astimezone(CHENGDU).date().isoformat())
        if n is not None:
            series[rule][n] += 1
    return labels, dict(sorted(series.items()))


@dataclass(frozen=True)
class PlatformFigures:
    platform: str
    loans: int
    volume_fen: int
    live: int
    late: int

    @property
    def overdue_ratio(self) -> float:
        return self.late / self.live if self.live else 0.0


def platform_figures(conn: Connection) -> list[PlatformFigures]:
    """Per platform: loans lent and their amount, and how many live ones are late."""
    lent = loans.c.status.in_(_LENT)
    rows = conn.execute(
        select(
            loans.c.platform,
            func.sum(case((lent, 1), else_=0)),
            func.sum(case((lent, loans.c.amount_fen), else_=0)),
            func.sum(case((loans.c.status.in_(_LIVE), 1), else_=0)),
            func.sum(case((loans.c.status.in_(_LATE), 1), else_=0)),
        ).group_by(loans.c.platform)
    )
    return [
        PlatformFigures(str(p), int(n or 0), int(v or 0), int(live or 0), int(late or 0))
        for p, n, v, live, late in rows
    ]


def evidence_events(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    rows = conn.execute(select(monitor_events).where(monitor_events.c.id.in_(list(ids))))
    return {
        r.id: {
            "kind": r.kind,
            "occurred_at": r.occurred_at,
            "credit_code": r.credit_code,
            "attrs": dict(r.attrs),
        }
        for r in rows
    }


def enterprise_names(conn: Connection, codes: Iterable[str]) -> dict[str, str]:
    """Registered names by credit code (the registry's public name; nothing personal)."""
    wanted = sorted(set(codes))[: LIST_LIMIT * 4]
    if not wanted:
        return {}
    rows = conn.execute(
        select(enterprises.c.credit_code, enterprises.c.name).where(
            enterprises.c.credit_code.in_(wanted)
        )
    )
    return {str(code): str(name) for code, name in rows}


def user_exists(conn: Connection, name: str) -> bool:
    found = conn.execute(select(dashboard_users.c.name).where(dashboard_users.c.name == name))
    return found.first() is not None


def add_user(
    conn: Connection,
    name: str,
    role: str,
    password_hash: str,
    created_at: datetime,
    department: str | None = None,
) -> None:
    conn.execute(
        insert(dashboard_users).values(
            name=name,
            role=role,
            password_hash=password_hash,
            failed_logins=0,
            created_at=created_at,
            department=department,
        )
    )


def change_user(conn: Connection, name: str, values: dict[str, object]) -> bool:
    """Whether there was such a user to change."""
    changed = conn.execute(
        update(dashboard_users).where(dashboard_users.c.name == name).values(**values)
    ).rowcount
    return bool(changed)


def user_login(conn: Connection, name: str) -> Row[str, str, datetime | None] | None:
    """(password_hash, role, disabled_at) of the user `name`."""
    u = dashboard_users.c
    return conn.execute(
        select(u.password_hash, u.role, u.disabled_at).where(u.name == name)
    ).first()


def delete_sessions(conn: Connection, name: str | None) -> int:
    """End one user's sessions, or everyone's with None; how many ended."""
    query = delete(dashboard_sessions)
    if name is not None:
        query = query.where(dashboard_sessions.c.user_name == name)
    return conn.execute(query).rowcount


def add_session(
    conn: Connection, session_id: str, user_name: str, csrf_token: str, now: datetime
) -> None:
    conn.execute(
        insert(dashboard_sessions).values(
            id=session_id, user_name=user_name, csrf_token=csrf_token, created_at=now,
            last_seen_at=now,
        )
    )  # fmt: skip


def delete_sessions_before(
    conn: Connection, seen_before: datetime, created_before: datetime
) -> None:
    t = dashboard_sessions.c
    conn.execute(
        delete(dashboard_sessions).where(
            or_(t.last_seen_at < seen_before, t.created_at < created_before)
        )
    )


def session_row(
    conn: Connection, session_id: str
) -> Row[str, str, datetime, datetime, str, datetime | None, str | None] | None:
    """The session and its user: user_name, csrf_token, created_at, last_seen_at,
    role, disabled_at, department."""
    s, u = dashboard_sessions.c, dashboard_users.c
    return conn.execute(
        select(
            s.user_name,
            s.csrf_token,
            s.created_at,
            s.last_seen_at,
            u.role,
            u.disabled_at,
            u.department,
        )
        .join(dashboard_users, u.name == s.user_name)
        .where(s.id == session_id)
    ).first()


def touch_session(conn: Connection, session_id: str, now: datetime) -> None:
    conn.execute(
        update(dashboard_sessions)
        .where(dashboard_sessions.c.id == session_id)
        .values(last_seen_at=now)
    )


def delete_session(conn: Connection, session_id: str) -> None:
    conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.id == session_id))


OverdueRepair = Row[str, str, str, datetime, datetime]


def overdue_repairs(conn: Connection, now: datetime, limit: int) -> tuple[int, list[OverdueRepair]]:
    """Credit repair applications pending past their review time: how many, and the
    most overdue (id, credit_code, department, applied_at, review_due_at)."""
    a = repair_applications.c
    late = (a.status == "pending") & (a.review_due_at < now)
    count = conn.execute(select(func.count()).select_from(repair_applications).where(late))
    rows = conn.execute(
        select(a.id, a.credit_code, a.department, a.applied_at, a.review_due_at)
        .where(late)
        .order_by(a.review_due_at, a.id)
        .limit(limit)
    )
    return int(count.scalar_one()), list(rows.all())
