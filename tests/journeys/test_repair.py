"""Journey 3: a department publishes credit repairs (信用修复) for two penalties. The
one past its minimum publication period leaves the next report, the score rises and
the trend changes from the quarter the repair took effect; the one still inside its
minimum period stays. The bank monitoring the loan sees it on its next report.

Crosses: the records route (penalties, then credit_repair records), the publication
rules (minimum period), the score and its quarterly trend, a `post_loan_monitoring`
consent read again, the audit chain and the access log.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from gateway.reports.build import quarter_ends_before
from testkit.builders import code
from tests.journeys.conftest import World, deliver
from tests.journeys.story import (
    MARKET,
    REPORT,
    TAX,
    decisions,
    direct_consent,
    fetched,
    fined,
    founded,
    tax_rating,
    today,
    writes,
)

SME = code(1831)


def repair(record_id: str, effective: date) -> dict[str, Any]:
    return {
        "record_id": f"CR-{record_id}", "source_department": MARKET, "credit_code": SME,
        "repaired_category": "penalty", "repaired_record_id": record_id,
        "repaired_source_department": MARKET, "repair_authority": MARKET,
        "effective_on": effective.isoformat(), "status": "approved",
    }  # fmt: skip


def shown(report: dict[str, Any]) -> list[str]:
    return sorted(i["source_record_id"] for i in report["sections"]["penalties"]["items"])


def test_a_published_repair_leaves_the_report_after_its_minimum_period(world: World) -> None:
    market = world.client("j3-market", "department")
    bank = world.client("j3-bank", "bank", org_code="J3-CDRCB")
    last_quarter = quarter_ends_before(today())[-1]
    # Decided 200 days before the last quarter's end: past its 3-month minimum by then.
    old, recent = last_quarter - timedelta(days=200), today() - timedelta(days=30)
    assert deliver(market, "registration", founded(SME, "成都天府绿能有限公司")) == ["accepted"]
    assert (
        deliver(market, "penalty", fined(SME, "P-J3-OLD", old), fined(SME, "P-J3-NEW", recent))
        == ["accepted"] * 2
    )
    # Known beyond its penalties, so the quarter after the repair still has a score.
    rating = {**tax_rating(SME, "B", old.year - 1), "published_on": old.isoformat()}
    tax = world.client("j3-tax", "department", department=TAX)
    assert deliver(tax, "tax_rating", rating) == ["accepted"]

    monitoring = direct_consent(
        bank, SME, "post_loan_monitoring", ["basic", "penalties"], max_daily_accesses=10
    )
    before = fetched(bank, SME, monitoring["id"])
    assert shown(before) == ["P-J3-NEW", "P-J3-OLD"]

    # Repaired a month before the quarter ended; the recent one is repaired today.
    took_effect = last_quarter - timedelta(days=30)
    assert (
        deliver(
            market, "credit_repair", repair("P-J3-OLD", took_effect), repair("P-J3-NEW", today())
        )
        == ["accepted"] * 2
    )

    after = fetched(bank, SME, monitoring["id"])
    assert shown(after) == ["P-J3-NEW"], "the recent penalty is inside its minimum period"
    lost = before["score"]["value"] - after["score"]["value"]
    assert lost == -35, "MKT-PEN 10 + PUB-PEN-GENERAL 15 + PUB-FINE-10K 10 given back"
    assert after["data_version"] > before["data_version"]
    then, now = before["score_trend"], after["score_trend"]
    assert [q["quarter"] for q in then] == [q["quarter"] for q in now]
    assert now[:-1] == then[:-1], "quarters before the repair took effect keep their score"
    assert now[-1]["value"] - then[-1]["value"] == 35

    assert "audit chain intact" in world.audit_verifies()
    log = world.access_log(SME)
    assert decisions(log) == [
        ("j3-bank", "POST /v1/consents", "allow"),
        ("j3-bank", REPORT, "allow"),
        ("j3-bank", REPORT, "allow"),
    ]
    assert writes(log) == [
        ("j3-market", "record accepted: registration"),
        ("j3-market", "record accepted: penalty"),
        ("j3-market", "record accepted: penalty"),
        ("j3-tax", "record accepted: tax_rating"),
        ("j3-market", "record accepted: credit_repair"),
        ("j3-market", "record accepted: credit_repair"),
    ], "every record write is in the enterprise's access log"
