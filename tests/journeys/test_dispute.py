"""Journey 4: an enterprise disputes (异议) a penalty through its platform, the report
marks the record as disputed, the department upholds it and delivers the corrected
record, and the report shows the correction with the dispute's outcome.

Crosses: the records route (penalty, then its corrected version), disputes opened by
a platform and resolved by a department, the report's marks and score, the audit
chain and the access log.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway.client import GatewayClient
from testkit.builders import code
from tests.journeys.conftest import World, deliver
from tests.journeys.story import REPORT, decisions, direct_consent, fetched, fined, founded, today

SME = code(1841)
OPEN = "POST /v1/records/{category}/{record_id}/disputes"
RESOLVE = "POST /v1/records/{category}/{record_id}/disputes/{dispute_id}/resolve"


def penalty_item(bank: GatewayClient, consent_id: str) -> dict[str, Any]:
    [item] = fetched(bank, SME, consent_id)["sections"]["penalties"]["items"]
    return dict(item)


def test_a_disputed_record_is_marked_until_the_department_resolves_it(world: World) -> None:
    market = world.client("j4-market", "department")
    platform = world.client("j4-kechuangtong", "platform", org_code="kechuangtong")
    bank = world.client("j4-bank", "bank", org_code="J4-CMB")
    decided = today() - timedelta(days=50)
    assert deliver(market, "registration", founded(SME, "成都锦江数码有限公司")) == ["accepted"]
    # The department keyed in 20万元 where the decision says 2万元.
    assert deliver(market, "penalty", fined(SME, "P-J4-1", decided, fine_wan="20")) == ["accepted"]
    consent = direct_consent(bank, SME, "loan_application", ["basic", "penalties"])
    first = penalty_item(bank, consent["id"])
    assert first["fine_fen"] == 20_000_000 and "dispute" not in first

    opened = platform.request(
        "POST", f"/v1/records/penalty/{first['record_id']}/disputes",
        json={"reason": "处罚决定书载明罚款2万元，非20万元"},
    )  # fmt: skip
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    marked = penalty_item(bank, consent["id"])
    assert marked["dispute"] == {
        "status": "open", "opened_at": dispute["opened_at"], "resolved_at": None,
    }  # fmt: skip

    upheld = market.request(
        "POST", f"/v1/records/penalty/{first['record_id']}/disputes/{dispute['id']}/resolve",
        json={"outcome": "upheld", "note": "录入错误，已更正为2万元"},
    )  # fmt: skip
    assert upheld.status_code == 200, upheld.text
    assert deliver(market, "penalty", fined(SME, "P-J4-1", decided, fine_wan="2")) == ["updated"]
    corrected = fetched(bank, SME, consent["id"])
    [item] = corrected["sections"]["penalties"]["items"]
    assert (item["record_id"], item["version"], item["fine_fen"]) == (
        first["record_id"], first["version"] + 1, 2_000_000,
    )  # fmt: skip
    assert item["dispute"]["status"] == "upheld"
    assert item["dispute"]["resolved_at"] == upheld.json()["resolved_at"]
    fines = {r["indicator"] for r in corrected["score"]["reasons"]}
    assert "PUB-FINE-100K" not in fines and "PUB-FINE-10K" in fines

    assert "audit chain intact" in world.audit_verifies()
    assert decisions(world.access_log(SME)) == [
        ("j4-bank", "POST /v1/consents", "allow"),
        ("j4-bank", REPORT, "allow"),
        ("j4-kechuangtong", OPEN, "allow"),
        ("j4-bank", REPORT, "allow"),
        ("j4-market", RESOLVE, "allow"),
        ("j4-bank", REPORT, "allow"),
    ]
