"""All SQL of alerts. Works on a sync Connection inside the caller's
transaction; it never commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, or_, select, update

from gateway.store.tables import alert_history, alerts


def unresolved(conn: Connection, rule: str, subject: str) -> Row[Any] | None:
    """The one alert of (rule, subject) not yet resolved, if there is one."""
    return conn.execute(
        select(alerts).where(
            alerts.c.rule == rule, alerts.c.subject == subject, alerts.c.state != "resolved"
        )
    ).first()


def insert_alert(conn: Connection, row: Mapping[str, Any]) -> None:
    """Raise an alert; IntegrityError when (rule, subject) already has an
    unresolved one (inside a savepoint, so the caller's transaction goes on)."""
    with conn.begin_nested():
        conn.execute(insert(alerts).values(**row))


def update_alert(conn: Connection, alert_id: str, values: Mapping[str, Any]) -> None:
    conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))


def set_state(
    conn: Connection, alert_id: str, allowed: Sequence[str], state: str, revision: int
) -> None:
    """Move the alert to `state` if it is in one of `allowed`."""
    conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, alerts.c.state.in_(allowed))
        .values(state=state, updated_at=datetime.now(UTC), revision=revision)
    )


def add_history(conn: Connection, alert_id: str, actor: str, action: str, note: str | None) -> None:
    conn.execute(
        insert(alert_history).values(
            alert_id=alert_id, at=datetime.now(UTC), actor=actor, action=action, note=note
        )
    )


def history(conn: Connection, alert_id: str) -> Iterable[Row[Any]]:
    """The alert's history lines, oldest first."""
    return conn.execute(
        select(alert_history)
        .where(alert_history.c.alert_id == alert_id)
        .order_by(alert_history.c.id)
    )


def find(conn: Connection, alert_id: str) -> Row[Any] | None:
    return conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()


def newest_first(
    conn: Connection,
    *,
    state: str | None,
    severity: str | None,
    rule: str | None,
    credit_code: str | None,
    since: datetime | None,
    before: tuple[int, str] | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to `limit` alerts, the latest change first, below the cursor `before`
    ((revision, id) of the last one shown)."""
    query = select(alerts)
    if state:
        query = query.where(alerts.c.state == state)
    if severity:
        query = query.where(alerts.c.severity == severity)
    if rule:
        query = query.where(alerts.c.rule == rule)
    if credit_code:
        query = query.where(alerts.c.credit_code == credit_code)
    if since:
        query = query.where(alerts.c.updated_at >= since)
    if before:
        revision, last_id = before
        query = query.where(
            or_(
                alerts.c.revision < revision,
                and_(alerts.c.revision == revision, alerts.c.id < last_id),
            )
        )
    order = (alerts.c.revision.desc(), alerts.c.id.desc())
    return list(conn.execute(query.order_by(*order).limit(limit)))


def changed_after(conn: Connection, revision: int, limit: int) -> Iterable[Row[Any]]:
    """Alerts changed after `revision`, oldest change first."""
    return conn.execute(
        select(alerts)
        .where(alerts.c.revision > revision)
        .order_by(alerts.c.revision, alerts.c.id)
        .limit(limit)
    )
