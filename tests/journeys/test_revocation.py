"""Journey 5: a consent revoked through either channel, the bank's own revoke or the
platform that witnessed the authorisation, closes the report on the very next
request, whichever worker answers, and the bank's consent feed says so.

Crosses: consents (bank and platform channels), the gate's change mark in Redis
read by two `xyd serve` workers, the report route, the consent change feed, the
audit chain and the access log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.client import GatewayClient
from testkit.builders import code
from tests.journeys.conftest import World, deliver
from tests.journeys.story import (
    REPORT,
    authorisation,
    decisions,
    direct_consent,
    fetched,
    fined,
    founded,
    today,
)

BY_BANK, BY_PLATFORM = code(1851), code(1852)
TRIES = 12  # fresh connections: both workers answer (all on one: odds 1 in 2,048)


def refused_everywhere(bank: GatewayClient, credit_code: str, consent_id: str) -> None:
    """The report, asked on fresh connections: every answer is the consent's 403."""
    headers = {"Authorization": f"Bearer {bank.token()}", "Consent-Id": consent_id}
    for _ in range(TRIES):
        with httpx.Client(base_url=bank.base_url, timeout=10) as fresh:
            answer = fresh.get(f"/v1/enterprises/{credit_code}/credit-report", headers=headers)
        assert answer.status_code == 403, answer.text
        assert answer.json()["type"].endswith("/consent-denied")
        assert answer.json()["reason"] == "revoked"


def changed_since(bank: GatewayClient, since: datetime) -> list[dict[str, Any]]:
    answer = bank.request("GET", "/v1/consents", params={"changed_since": since.isoformat()})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_a_revocation_from_either_channel_closes_the_next_report_on_every_worker(
    world: World,
) -> None:
    market = world.client("j5-market", "department")
    for sme, name in ((BY_BANK, "成都蓉创精密机械有限公司"), (BY_PLATFORM, "成都锦城食品有限公司")):
        assert deliver(market, "registration", founded(sme, name)) == ["accepted"]
        assert deliver(market, "penalty", fined(sme, f"P-{sme}", today() - timedelta(days=20))) == [
            "accepted"
        ]
    bank = world.client("j5-bank", "bank", org_code="J5-CCB")
    platform = world.client("j5-kechuangtong", "platform", org_code="kechuangtong")
    before = datetime.now(UTC) - timedelta(seconds=1)

    # The bank's channel: its own consent, one report, then its own revocation.
    own = direct_consent(bank, BY_BANK, "credit_review", ["basic", "penalties"])
    fetched(bank, BY_BANK, own["id"])
    revoked = bank.request(
        "POST", f"/v1/consents/{own['id']}/revoke", json={"reason": "企业撤回授权"}
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    refused_everywhere(bank, BY_BANK, own["id"])

    # The platform's channel: an authorisation signed on 科创通, revoked there.
    with world.kechuangtong() as sender:
        signed = sender.send(authorisation(BY_PLATFORM, "J5-CCB", 5, ["basic", "penalties"]))
    assert signed.status_code == 200, signed.text
    [witnessed] = bank.request("GET", f"/v1/consents?credit_code={BY_PLATFORM}").json()["items"]
    fetched(bank, BY_PLATFORM, witnessed["id"])
    by_platform = platform.request(
        "POST", f"/v1/consents/{witnessed['id']}/revoke", json={"reason": "企业在科创通撤回授权"}
    )
    assert by_platform.status_code == 200, by_platform.text
    assert by_platform.json()["history"][-1]["by"] == "j5-kechuangtong"
    refused_everywhere(bank, BY_PLATFORM, witnessed["id"])

    # The bank's feed lists both revocations since it last looked.
    feed = {c["id"]: c for c in changed_since(bank, before)}
    for consent_id in (own["id"], witnessed["id"]):
        assert (feed[consent_id]["status"], feed[consent_id]["change"]) == (
            "revoked", "consent.revoked",
        )  # fmt: skip

    assert "audit chain intact" in world.audit_verifies()
    consents_route = "POST /v1/consents"
    revoke_route = "POST /v1/consents/{consent_id}/revoke"
    denied = [("j5-bank", REPORT, "deny")] * TRIES
    assert decisions(world.access_log(BY_BANK)) == [
        ("j5-bank", consents_route, "allow"),
        ("j5-bank", REPORT, "allow"),
        ("j5-bank", revoke_route, "allow"),
        *denied,
    ]
    assert decisions(world.access_log(BY_PLATFORM)) == [
        ("j5-bank", REPORT, "allow"),
        ("j5-kechuangtong", revoke_route, "allow"),
        *denied,
    ]
