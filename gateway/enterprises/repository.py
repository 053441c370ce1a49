"""All SQL of the enterprise lookup: the registry's public columns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
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
