"""What the journeys say to the gateway: records as departments deliver them, a
platform's authorisation as its spec signs it, a report as a bank fetches it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gateway.client import GatewayClient
from gateway.identity import jose
from testkit.builders import penalty, registration
from xyd_demo.simulators import kechuangtong as kct

MARKET = "成都市市场监督管理局"
REPORT = "GET /v1/enterprises/{credit_code}/credit-report"
TAX = "国家税务总局成都市税务局"


def today() -> date:
    return datetime.now(UTC).date()


def founded(credit_code: str, name: str, **overrides: Any) -> dict[str, Any]:
    """The market regulator's registration record of an enterprise."""
    return registration(
        record_id=f"R-{credit_code}", credit_code=credit_code, subject_name=name, **overrides
    )


def fined(credit_code: str, record_id: str, decided: date, fine_wan: str = "2") -> dict[str, Any]:
    """A general market-regulation penalty, published for the rules' full period."""
    return penalty(
        record_id=record_id, credit_code=credit_code, decision_date=decided.isoformat(),
        publication_until=None, fine_wan=fine_wan,
    )  # fmt: skip


def tax_rating(credit_code: str, rating: str, year: int) -> dict[str, Any]:
    return {
        "record_id": f"T-{credit_code}-{year}", "source_department": TAX,
        "credit_code": credit_code, "rating_year": year, "rating": rating,
        "published_on": date(year + 1, 4, 1).isoformat(),
    }  # fmt: skip


def authorisation(
    credit_code: str, bank_code: str, n: int, scopes: list[str], days: int = 90
) -> dict[str, Any]:
    """科创通's AUTHORIZATION_SIGNED for `bank_code`, as its simulator writes it."""
    now = datetime.now(UTC)
    return kct.event(
        "AUTHORIZATION_SIGNED", event_id=f"kct-journey-auth-{n}", credit_code=credit_code,
        application_no=f"KCTJ{n:05d}", occurred_at=now - timedelta(minutes=5),
        bank_code=bank_code,
        authorization=kct.authorization(bank_code, (now + timedelta(days=days)).date(), scopes),
    )  # fmt: skip


def direct_consent(
    bank: GatewayClient, credit_code: str, purpose: str, scopes: list[str], **extra: Any
) -> dict[str, Any]:
    """A bank's own POST /v1/consents with the signed document's digest as evidence."""
    body = {
        "credit_code": credit_code, "grantee": bank.client_id, "purpose": purpose,
        "scopes": scopes, "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "evidence": {"document_sha256": "cd" * 32, "signer": "法定代表人", "channel": "direct"},
        **extra,
    }  # fmt: skip
    answer = bank.request("POST", "/v1/consents", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def report(
    bank: GatewayClient, credit_code: str, consent_id: str, **headers: str
) -> httpx.Response:
    return bank.request(
        "GET", f"/v1/enterprises/{credit_code}/credit-report",
        headers={"Consent-Id": consent_id, **headers},
    )  # fmt: skip


def fetched(bank: GatewayClient, credit_code: str, consent_id: str) -> dict[str, Any]:
    """A report that a bank checks against the gateway's JWKS before it believes it."""
    answer = report(bank, credit_code, consent_id)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    signature = body.pop("signature")
    assert verifies(bank.http, body, signature), "the report's signature does not verify"
    return body


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verifies(http: httpx.Client, report: dict[str, Any], detached: str) -> bool:
    """Canonical JSON, the published JWKS, and nothing of the gateway's code."""
    head, _, signature = detached.split(".")
    kid = json.loads(_b64(head))["kid"]
    jwk = next(k for k in http.get("/.well-known/jwks.json").json()["keys"] if k["kid"] == kid)
    payload = json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    signed = f"{head}.{base64.urlsafe_b64encode(payload.encode()).rstrip(b'=').decode()}"
    key = jose.public_key_from_jwk(jwk)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    raw = _b64(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        key.verify(der, signed.encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def decisions(log: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """An access log as (client, route, decision), oldest first, but for record
    writes (`writes`)."""
    return [
        (e["client_id"], e["route"], e["decision"])
        for e in log
        if not (e["reason"] or "").startswith("record ")
    ]


def writes(log: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The record writes in an access log: (client, `record <outcome>: <category>`)."""
    return [
        (e["client_id"], " ".join(e["reason"].split()[:3]))
        for e in log
        if (e["reason"] or "").startswith("record ")
    ]
