"""All SQL of the enterprises table outside ingestion: the registry's public
columns, and the data version every change to what a report shows moves on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import enterprises

_PUBLIC = (
    enterprises.c.credit_code,
    enterprises.c.name,
    enterprises.c.entity_type,
    enterprises.c.division_code,
    enterprises.c.legal_rep_masked,
    enterprises.c.registered_on,
    enterprises.c.status,
    enterprises.c.registered_capital_fen,
    enterprises.c.industry_code,
    enterprises.c.data_version,
    enterprises.c.updated_at,
)


async def public_row(conn: AsyncConnection, credit_code: str) -> dict[str, Any] | None:
    """The enterprise's public columns by name; None when the registry does not know it."""
    row = (
        await conn.execute(select(*_PUBLIC).where(enterprises.c.credit_code == credit_code))
    ).first()
    return None if row is None else {str(name): value for name, value in row._mapping.items()}


def bump_data_version(conn: Connection, credit_code: str, now: datetime) -> None:
    """Reports cached under the old version are never served again (a loan
    event or a dispute changed what the report shows)."""
    conn.execute(
        update(enterprises)
        .where(enterprises.c.credit_code == credit_code)
        .values(data_version=enterprises.c.data_version + 1, updated_at=now)
    )


# PostgreSQL: the bumps as one JSON parameter, one statement of constant text.
_BUMP_PG = text(
    """
    UPDATE enterprises SET data_version = enterprises.data_version + b.n, updated_at = :now
    FROM jsonb_to_recordset(CAST(:bumps AS jsonb)) AS b(credit_code text, n integer)
    WHERE enterprises.credit_code = b.credit_code
    """
)


def bump_data_versions(conn: Connection, bumps: Mapping[str, int], now: datetime) -> None:
    """`bump_data_version` `n` times over for each credit code, in one statement
    on PostgreSQL (elsewhere one per distinct `n`), codes in order."""
    ordered = sorted(bumps.items())
    if not ordered:
        return
    if conn.dialect.name == "postgresql":
        document = orjson.dumps([{"credit_code": c, "n": n} for c, n in ordered]).decode()
        conn.execute(_BUMP_PG, {"bumps": document, "now": now})
        return
    by_count: dict[int, list[str]] = {}
    for credit_code, times in ordered:
        by_count.setdefault(times, []).append(credit_code)
    for times, codes in sorted(by_count.items()):
        conn.execute(
            update(enterprises)
            .where(enterprises.c.credit_code.in_(codes))
            .values(data_version=enterprises.c.data_version + times, updated_at=now)
        )
