"""Builders for test data: one valid record per category, overridable per field."""

from __future__ import annotations

import re
from typing import Any

import orjson
from sqlalchemy import Engine, func, select

from gateway.identifiers import make_credit_code

# Real, published codes (they pass both check characters).
REAL_CODES = ("9144030071526726XG", "914403001922038216", "91330100716105852F")
AUTHORITY_CODE = make_credit_code("1", "1", "510100", "00000001")
# Departments as config/departments.yaml (the demo's) names them; the kit's
# `register` binds a department client to one of them (the market regulator
# unless told).
MARKET = "成都市市场监督管理局"
TAX = "国家税务总局成都市税务局"
CREDIT_OFFICE = "成都市发展和改革委员会"


def code(n: int, division: str = "510104") -> str:
    """A valid unified social credit code for test enterprise number n."""
    return make_credit_code("9", "1", division, f"{n:08d}")


def resident_id(first17: str = "51010419800101123") -> str:
    from gateway.identifiers import resident_id_check_char

    return first17 + resident_id_check_char(first17)


def penalty(n: int = 1, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "record_id": f"P-{n:06d}",
        "source_department": MARKET,
        "credit_code": code(n),
        "subject_name": f"成都测试{n}号有限公司",
        "party_category": "legal_person",
        "legal_rep_name": "张三丰",
        "legal_rep_id_number": resident_id(),
        "decision_number": f"成市监罚〔2025〕{n}号",
        "violation_type": "虚假宣传",
        "legal_basis": "《中华人民共和国反不正当竞争法》第二十条",
        "penalty_types": ["罚款", "警告"],
        "content": "罚款人民币1.5万元",
        "fine_wan": "1.5",
        "severity": "general",
        "decision_date": "2025-06-01",
        "publication_until": "2026-06-01",
        "authority": "成都市市场监督管理局",
        "authority_code": AUTHORITY_CODE,
    }
    row.update(overrides)
    return row


def registration(n: int = 1, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "record_id": f"R-{n:06d}",
        "source_department": MARKET,
        "credit_code": code(n),
        "subject_name": f"成都测试{n}号有限公司",
        "entity_type": "有限责任公司",
        "registered_on": "2019-03-15",
        "status": "存续",
        "legal_rep_name": "李四",
        "legal_rep_id_number": resident_id(),
        "registered_capital_wan": "100",
    }
    row.update(overrides)
    return row


def ndjson(*rows: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


CODE_LIKE = re.compile(rb"(?<![0-9A-Z])[0-9A-HJ-NP-RTUW-Y]{18}(?![0-9A-Z])")


def register_enterprises(engine: Engine, *codes: str, status: str = "存续") -> None:
    """Registration records for `codes`, stored: a consent names a registered enterprise."""
    from gateway.records.readers import read_ndjson
    from gateway.records.service import Ingestor

    rows = [
        registration(n, record_id=f"R-{c}", credit_code=c, status=status)
        for n, c in enumerate(dict.fromkeys(codes), start=1)
    ]
    if rows:
        Ingestor(engine, "registration", b"test-pii-key", 500).run(
            read_ndjson(ndjson(*rows).splitlines()), "test"
        )


def codes_in(*payloads: bytes | str) -> list[str]:
    """Every valid credit code a platform's messages name, whatever their format."""
    from gateway.identifiers import is_valid_credit_code

    found = []
    for payload in payloads:
        data = payload.encode() if isinstance(payload, str) else payload
        found += [m.decode() for m in CODE_LIKE.findall(data) if is_valid_credit_code(m.decode())]
    return list(dict.fromkeys(found))


def count(engine: Engine, table: Any, *where: Any) -> int:
    """Rows of `table` matching `where`."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())
