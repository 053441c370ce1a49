from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.enterprises import repository
from gateway.identifiers import UnknownEnterprise, checked_code


async def basic_data(conn: AsyncConnection, credit_code: str) -> dict[str, Any]:
    code = checked_code(credit_code)
    data = await repository.public_row(conn, code)
    if data is None:
        raise UnknownEnterprise(f"no enterprise with credit code {code}")
    data["registered_on"] = data["registered_on"].isoformat() if data["registered_on"] else None
    data["updated_at"] = data["updated_at"].isoformat()
    return data
