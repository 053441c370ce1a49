"""The consent a simulated bank registers before fetching reports: every section the
gateway's consent rules know, for a credit review, 30 days. Kept apart from the
Locust scenarios so the benchmark can use it without importing Locust (which
monkey-patches the standard library on import)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import orjson

from gateway.settings import Settings
from policies.consent import ConsentRules


@cache
def consent_sections() -> list[str]:
    return sorted(ConsentRules.load(Settings().config_dir / "consent.yaml").sections)


def consent_body(code: str, grantee: str) -> bytes:
    return orjson.dumps(
        {
            "credit_code": code,
            "grantee": grantee,
            "purpose": "credit_review",
            "scopes": consent_sections(),
            "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "evidence": {
                "document_sha256": "ab" * 32,
                "signer": "法定代表人（压测）",
                "channel": "direct",
            },
        }
    )
