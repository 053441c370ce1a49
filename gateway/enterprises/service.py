from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.identifiers import UnknownEnterprise, checked_code
from gateway.store.tables import enterprises
from gateway.timeutil import aware

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


async def basic_data(conn: AsyncConnection, credit_code: str) -> dict[str, Any]:
    code = checked_code(credit_code)
    row = (await conn.execute(select(*_PUBLIC).where(enterprises.c.credit_code == code))).first()
    if row is None:
        raise UnknownEnterprise(f"no enterprise with credit code {code}")
    data = {str(name): value for name, value in row._mapping.items()}
    data["registered_on"] = data["registered_on"].isoformat() if data["registered_on"] else None
    # SQLite returns naive datetimes; everything stored is UTC, and times carry an offset.
    updated = data["updated_at"]
    data["updated_at"] = aware(updated).isoformat()
    return data
