"""Amounts and days are bounded before any arithmetic, whatever brings them.

"1e999000" is ten characters; as `fine_wan` or a 科创通 `amount` it made `int()`
build a million-digit integer on the event loop (45 s, /healthz hanging, then
a 500). It is now refused on its line (records) or as its message (the
platform's own error answer, dead-lettered), as are full-width digits,
underscores and thousands separators, and days before 1949-10-01 (a stored
0001-01-01 penalty stopped the monitor for good).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from starlette.testclient import TestClient

from adapters.kechuangtong.wire import parse as kct_parse
from adapters.tianfu_rongtong.wire import EventInvalid
from adapters.tianfu_rongtong.wire import _fen as tfrt_fen
from gateway.app import create_app
from gateway.bounds import InvalidAmount, fen_from_wan, fen_from_yuan
from gateway.monitor import relay
from gateway.monitor.bus import MemoryBus
from gateway.monitor.relay import relay_once
from gateway.monitor.service import load_rules
from gateway.monitor.worker import Monitor
from gateway.records.readers import read_ndjson
from gateway.records.schemas import Penalty
from gateway.records.service import Ingestor
from gateway.settings import Settings
from gateway.store.tables import alerts, loan_events, monitor_events, platform_dead_letters, records
from policies.risk.base import MonitorEvent
from policies.risk.common import whole
from testkit.builders import code, ndjson, penalty, register_enterprises, registration
from testkit.clients import register
from testkit.kechuangtong import CODE, kct, repayment, running
from tests.conftest import store_at
from tests.identity.test_token_flow import get_token
from tests.loans.test_ledger import event as loan_event
from tests.loans.test_ledger import run as store_loans
from tests.security.kit import callers

NDJSON = {"Content-Type": "application/x-ndjson"}
# Each spelled the way `int()`, `Decimal()` or pydantic took it before.
MISSPELT = ["1e999000", "１２", "1_000", "1,000,000.5", "1e3", "+12", "12.", ".5"]
SANE_S = 5.0  # a generous bound: the old parse of "1e999000" took about 45 s


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL and Redis, as in production."""
    return store_at("postgresql", request)


@dataclass
class Department:
    client: TestClient
    headers: dict[str, str]

    def post(self, category: str, *rows: dict[str, Any]) -> list[dict[str, Any]]:
        """Each line's result, answered 200 in a sane time."""
        started = time.monotonic()
        answer = self.client.post(
            f"/v1/records/{category}", content=ndjson(*rows), headers=self.headers
        )
        assert time.monotonic() - started < SANE_S
        assert answer.status_code == 200, answer.text
        results: list[dict[str, Any]] = answer.json()["results"]
        return results


@pytest.fixture
def department(id_settings: Settings, engine: Engine) -> Iterator[Department]:
    with TestClient(create_app(id_settings), raise_server_exceptions=False) as client:
        yield Department(client, {**NDJSON, **callers(client, engine)["department"]})


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# --- records -----------------------------------------------------------------------


def test_a_1e999000_amount_is_refused_on_its_line_and_the_next_line_is_stored(
    department: Department,
) -> None:
    results = department.post(
        "penalty",
        penalty(1, fine_wan="1e999000"),
        penalty(2, confiscation_wan="1e999000"),
        penalty(3),
    )
    assert [r["outcome"] for r in results] == ["rejected", "rejected", "accepted"]
    assert "fine_wan" in results[0]["reason"] and "exponent" in results[0]["reason"]
    assert "confiscation_wan" in results[1]["reason"]
    capital = department.post("registration", registration(5, registered_capital_wan="1e999"))
    assert capital[0]["outcome"] == "rejected"
    assert "registered_capital_wan" in capital[0]["reason"]
    assert department.client.get("/healthz").status_code == 200


@pytest.mark.parametrize("misspelt", MISSPELT)
def test_a_misspelt_amount_is_refused_in_any_field_of_money(misspelt: str) -> None:
    for field in ("fine_wan", "confiscation_wan", "fine_fen"):
        with pytest.raises(ValueError, match=field):
            Penalty.model_validate(penalty(1, **{field: misspelt}))


def test_amounts_over_the_ceiling_or_finer_than_a_fen_are_refused_per_line(
    department: Department, engine: Engine
) -> None:
    results = department.post(
        "penalty",
        penalty(1, fine_wan="1000000000"),  # 10^15 fen, the ceiling: kept
        penalty(2, fine_wan="1000000000.000001"),
        penalty(3, fine_wan=1e300),  # a JSON number
        penalty(4, fine_wan="1.0000001"),
        penalty(5, fine_fen=10**15 + 1),
        penalty(6, fine_wan="9" * 50),
    )
    assert [r["outcome"] for r in results] == ["accepted"] + ["rejected"] * 5
    with engine.connect() as conn:
        assert conn.execute(select(records.c.id)).all()  # the first line stored
    assert "more than" in results[1]["reason"] and "more than" in results[2]["reason"]
    assert "6 decimals" in results[3]["reason"]
    assert "longer than" in results[5]["reason"]


def test_the_parse_refuses_a_10_mb_amount_by_its_length_before_reading_it() -> None:
    from gateway import bounds

    digits = "9" * 10_000_000
    started = time.monotonic()
    for unit in (bounds.FEN, bounds.YUAN, bounds.WAN):
        with pytest.raises(InvalidAmount, match="longer than 40 characters"):
            bounds.fen(digits, unit)
    assert time.monotonic() - started < SANE_S
    # The same bounds for a Decimal or an integer handed over in Python: compared
    # by their exponent and bit length, never expanded.
    with pytest.raises(InvalidAmount, match="more than"):
        bounds.fen(Decimal("1e999000"), bounds.WAN)
    with pytest.raises(InvalidAmount, match="more than"):
        bounds.fen(10**1000, bounds.FEN)
    assert bounds.fen("1000000000", bounds.WAN) == bounds.MAX_FEN


def test_a_days_floor_1949_10_01_and_ceiling_2199_12_31_for_records(
    department: Department, engine: Engine
) -> None:
    results = department.post(
        "penalty",
        penalty(1, decision_date="0001-01-01"),
        penalty(2, decision_date="1949-09-30"),
        penalty(3, decision_date="1949-10-01", publication_until="2199-12-31"),
        penalty(4, publication_until="9999-12-30"),
        penalty(5, valid_until="9999-12-31"),  # the open-ended spellings: no end
        penalty(6, valid_until="长期"),
    )
    assert [r["outcome"] for r in results] == [
        "rejected", "rejected", "accepted", "rejected", "accepted", "accepted",
    ]  # fmt: skip
    assert "decision_date" in results[0]["reason"] and "1949-10-01" in results[0]["reason"]
    assert "publication_until" in results[3]["reason"]
    founded = department.post("registration", registration(6, registered_on="1900-01-01"))
    assert founded[0]["outcome"] == "rejected" and "registered_on" in founded[0]["reason"]
    contributions = {
        "record_id": "SI-1", "source_department": "成都市人力资源和社会保障局",
        "credit_code": code(1), "period": "0001-01", "paid_fen": "100",
    }  # fmt: skip
    # Contributions come from the human resources bureau, not the market regulator.
    agency = register(
        engine, "si-agency", client_type="department", department="成都市人力资源和社会保障局"
    )
    hr = Department(
        department.client,
        {**NDJSON, "Authorization": f"Bearer {get_token(department.client, agency)}"},
    )
    [period] = hr.post("social_insurance", contributions)
    assert period["outcome"] == "rejected" and "period" in period["reason"]


# --- platforms -----------------------------------------------------------------------


def test_a_signed_kechuangtong_amount_of_1e999000_gets_its_error_answer_and_a_dead_letter(
    settings: Settings, tmp_path: Path, engine: Engine
) -> None:
    register_enterprises(engine, CODE)
    with running(settings, tmp_path) as gateway:
        send = gateway.sender.send
        started = time.monotonic()
        answers = [
            send(kct("LOAN_DISBURSED", 1, amount="1e999000")),
            send(kct("REPAYMENT_RECEIVED", 2, repayment=repayment("1e999000", 0))),
            send(kct("LOAN_DISBURSED", 3, amount="1,500,000.00")),
            send(kct("LOAN_DISBURSED", 4, amount="１２")),
        ]
        assert time.monotonic() - started < SANE_S
        for answer, field in zip(
            answers, ["loan.amount", "repayment.amount", "loan.amount", "loan.amount"], strict=True
        ):
            assert answer.status_code == 400, answer.text
            assert answer.json()["code"] == 40000
            assert field in answer.json()["message"]
        assert send(kct("LOAN_DISBURSED", 5, amount="1500000.00")).status_code == 200
    assert count(engine, platform_dead_letters) == 4
    assert count(engine, loan_events) == 1


@pytest.mark.parametrize("misspelt", [*MISSPELT, " 12"])  # a record's cell is stripped first
def test_a_platform_amount_misspelt_is_refused(misspelt: str) -> None:
    for parse in (fen_from_yuan, fen_from_wan):
        with pytest.raises(InvalidAmount):
            parse(misspelt)


def test_a_kechuangtong_time_or_date_before_the_floor_is_refused_not_a_crash() -> None:
    import orjson

    from adapters.kechuangtong.wire import Invalid

    body = kct("REPAYMENT_RECEIVED", 1, repayment=repayment("1.00", 0))
    body["occurredAt"] = "0001-01-01T00:00:00+08:00"  # overflowed on its way to UTC
    with pytest.raises(Invalid, match="occurredAt"):
        kct_parse(orjson.dumps(body), body["eventId"])
    body = kct("REPAYMENT_RECEIVED", 1, repayment=repayment("1.00", 0, due="0001-01-01"))
    with pytest.raises(Invalid, match=r"repayment\.dueDate"):
        kct_parse(orjson.dumps(body), body["eventId"])


def test_a_tianfu_rongtong_amount_over_the_ceiling_is_refused() -> None:
    assert tfrt_fen(10**15, "amount_fen") == 10**15
    for bad in (10**15 + 1, 10**400, "100", 1.0, True):
        with pytest.raises(EventInvalid, match="amount_fen"):
            tfrt_fen(bad, "amount_fen")


# --- the monitor ---------------------------------------------------------------------


async def test_the_monitor_survives_a_stored_0001_01_01_penalty(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay, "SETTLE", timedelta(0))
    Ingestor(engine, "penalty", b"k", 10).run(read_ndjson(ndjson(penalty(1)).splitlines()), "t")
    # Written to the store directly: old data, or someone with write access to it.
    with engine.begin() as conn:
        conn.execute(update(records).values(effective_date=date(1, 1, 1)))
    store_loans(
        engine,
        loan_event(1, "loan_disbursed", amount_fen=1000),
        loan_event(2, "repayment_overdue", 5, days_overdue=95),
    )
    bus = MemoryBus()
    assert await relay_once(engine, bus) == 3
    monitor = Monitor(engine, load_rules(Path("config")))
    stop = asyncio.Event()
    runner = asyncio.create_task(monitor.run(bus, "w", stop=stop))
    for _ in range(100):
        if await bus.drained():
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(runner, 5)
    assert await bus.drained()  # the bad event acknowledged, not pending for ever
    with engine.connect() as conn:
        applied = set(conn.execute(select(monitor_events.c.id)).scalars())
        rules = {row.rule for row in conn.execute(select(alerts))}
    assert applied == {"loan:kechuangtong:m-1", "loan:kechuangtong:m-2"}
    assert "overdue_default" in rules
    # Applied directly, the bad event beside a good one costs only itself.
    good = loan_event(3, "repayment_overdue", 9, days_overdue=95, loan_no="KCT-2")
    store_loans(engine, good)
    bus = MemoryBus()
    await relay_once(engine, bus)
    [delivery] = await bus.read("w", 10, 10)
    bad = MonitorEvent(
        id="record:x:v1",
        kind="record",
        occurred_at=datetime(1, 1, 1, tzinfo=UTC),
        credit_code=code(1),
        attrs={"category": "penalty", "data": {}},
    )
    raised = monitor.apply_batch([bad, delivery.event])
    assert raised[0] == [] and raised[1]


def test_a_rule_reads_a_stored_amount_it_cannot_use_as_none() -> None:
    for bad in ("²", "9" * 5000, "１２"):
        assert whole({"fine_fen": bad}, "fine_fen") is None
    assert whole({"fine_fen": "1200"}, "fine_fen") == 1200
