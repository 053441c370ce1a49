from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.enterprises import repository
from gateway.errors import InvalidValue, NotFound
from gateway.identifiers import InvalidIdentifier, remembered_credit_code


class UnknownEnterprise(NotFound):
    type_slug, title = "unknown-enterprise", "No such enterprise"


def checked_code(value: str) -> str:
    """The normalised credit code, or 422 naming what is wrong with it."""
    try:
        return remembered_credit_code(value)
    except InvalidIdentifier as exc:
        raise InvalidValue(
            f"credit_code: {exc}", field="credit_code", reason=exc.reason, position=exc.position
        ) from None


async def basic_data(conn: AsyncConnection, credit_code: str) -> dict[str, Any]:
    code = checked_code(credit_code)
    data = await repository.public_row(conn, code)
    if data is None:
        raise UnknownEnterprise(f"no enterprise with credit code {code}")
    data["registered_on"] = data["registered_on"].isoformat() if data["registered_on"] else None
    data["updated_at"] = data["updated_at"].isoformat()
    return data
