"""SQL of an enterprise's access log: its audit entries, newest first, with
the reader named. Works on a sync Connection inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from gateway.store.tables import audit_entries, clients, enterprises


def enterprise_known(conn: Connection, credit_code: str) -> bool:
    return (
        conn.execute(
            select(enterprises.c.credit_code).where(enterprises.c.credit_code == credit_code)
        ).first()
        is not None
    )


def access_entries(
    conn: Connection, credit_code: str, *, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` entries about the enterprise, newest first, below seq `before`."""
    query = (
        select(
            audit_entries.c.seq,
            audit_entries.c.at,
            audit_entries.c.client_id,
            clients.c.display_name.label("client_name"),
            clients.c.client_type,
            clients.c.org_code,
            audit_entries.c.route,
            audit_entries.c.decision,
            audit_entries.c.reason,
            audit_entries.c.consent_id,
            audit_entries.c.purpose,
            audit_entries.c.request_id,
        )
        .select_from(
            audit_entries.outerjoin(clients, clients.c.client_id == audit_entries.c.client_id)
        )
        .where(audit_entries.c.credit_code == credit_code)
        .order_by(audit_entries.c.seq.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(audit_entries.c.seq < before)
    return [{str(k): v for k, v in row._mapping.items()} for row in conn.execute(query)]
