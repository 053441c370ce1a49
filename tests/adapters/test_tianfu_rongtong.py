"""天府融通 Tianfu Rongtong: the credit-event feed polled from the simulator over real HTTP."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Connection, Engine, func, select

import adapters.tianfu_rongtong.adapter
from adapters.http import RetriesExhausted, UpstreamError
from adapters.pull import CredentialsMissing
from adapters.registry import check_block
from adapters.tianfu_rongtong.adapter import TianfuRongtongAdapter
from gateway.app import create_app
from gateway.db import make_async_engine
from gateway.positions import read_position
from gateway.settings import Settings
from gateway.state import state_of
from gateway.store.tables import consents, loan_events, loans, platform_dead_letters
from testkit.builders import codes_in, register_enterprises
from testkit.clients import register
from testkit.live import serve
from xyd_demo.simulators.tianfu_rongtong import BANKS, TianfuRongtongSimulator

CONFIG = Path(__file__).resolve().parents[2] / "config"
STATUS_AFTER = {
    "financing.applied": "applied", "financing.authorized": "applied",
    "financing.approved": "approved", "financing.rejected": "rejected",
    "financing.disbursed": "disbursed", "repayment.received": "disbursed",
    "repayment.overdue": "overdue", "financing.defaulted": "defaulted",
    "financing.settled": "settled",
}  # fmt: skip


class Sleeps(list[float]):
    """Stands in for asyncio.sleep: records what the adapter waited, without waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(0)


def registered(engine: Engine, simulator: TianfuRongtongSimulator) -> None:
    """The enterprises the feed names so far, in the registry (authorisations need them)."""
    register_enterprises(engine, *codes_in(json.dumps(simulator.log.entries)))


@pytest.fixture
def simulator() -> TianfuRongtongSimulator:
    return TianfuRongtongSimulator(seed=11, events=150)


@pytest.fixture
def base_url(simulator: TianfuRongtongSimulator) -> Iterator[str]:
    with serve(simulator.app) as url:
        yield url


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def write_credentials(path: Path, base_url: str, client_id: str, secret: str) -> Path:
    body = {"base_url": base_url, "client_id": client_id, "client_secret": secret}
    path.write_text(json.dumps(body))
    return path


async def make_adapter(
    settings: Settings, tmp_path: Path, credentials: Path, sleeps: Sleeps
) -> AsyncIterator[TianfuRongtongAdapter]:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    block = {"enabled": True, "simulator_file": str(credentials), "schedule_s": 60}
    (config / "platforms.yaml").write_text(yaml.safe_dump({"tianfu-rongtong": block}))
    settings.config_dir = config
    settings.public_base_url = "http://testserver"
    settings.run_background = False
    app = create_app(settings)
    state = state_of(app)
    state.engine = make_async_engine(settings)
    state.platform_services.bind(state.engine)
    adapter = state.platforms["tianfu-rongtong"]
    assert isinstance(adapter, TianfuRongtongAdapter)
    adapter.retry = replace(adapter.retry, sleep=sleeps)
    adapter.page_limit = 25  # several pages from a small feed
    yield adapter
    await state.engine.dispose()


@pytest.fixture
async def adapter(
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
    base_url: str,
    simulator: TianfuRongtongSimulator,
    sleeps: Sleeps,
) -> AsyncIterator[TianfuRongtongAdapter]:
    for code in BANKS:
        register(engine, f"bank-{code.lower()}", org_code=code)
    registered(engine, simulator)
    path = write_credentials(
        tmp_path / "tfrt.json", base_url, simulator.client_id, simulator.client_secret
    )
    async for built in make_adapter(settings, tmp_path, path, sleeps):
        yield built


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def cursor(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return read_position(conn, "tianfu-rongtong", "cursor")


def valid(simulator: TianfuRongtongSimulator) -> dict[str, dict[str, Any]]:
    return {k: e for k, e in simulator.log.unique().items() if k not in simulator.log.invalid_ids}


def stored_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(loan_events.c.message_id)).scalars())


async def test_a_full_sync_stores_every_event_once_and_the_ledger_folds(
    adapter: TianfuRongtongAdapter, simulator: TianfuRongtongSimulator, engine: Engine
) -> None:
    entries, good = simulator.log.entries, valid(simulator)
    assert len(entries) > len(simulator.log.unique())  # some ids come again on later pages
    report = await adapter.sync()
    assert report.fetched == len(entries)
    assert report.accepted == len(good)
    assert sorted(stored_ids(engine)) == sorted(good)
    bad = simulator.log.invalid_ids
    assert {r["id"] for r in report.rejected} == bad
    assert report.duplicate == len(entries) - len(good) - len(report.rejected)
    assert count(engine, platform_dead_letters) == len(bad)  # redelivered rejects kept once
    assert report.position == cursor(engine) is not None
    last: dict[str, str] = {}
    for event in good.values():  # the log is in time order, each loan's life too
        last[event["financing"]["contract_no"]] = event["type"]
    with engine.connect() as conn:
        folded = {r.loan_no: r.status for r in conn.execute(select(loans))}
        granted = list(conn.execute(select(consents)))
    assert folded == {loan_no: STATUS_AFTER[kind] for loan_no, kind in last.items()}
    assert len(granted) == sum(e["type"] == "financing.authorized" for e in good.values())


async def test_a_second_sync_continues_from_the_saved_cursor(
    adapter: TianfuRongtongAdapter, simulator: TianfuRongtongSimulator, engine: Engine
) -> None:
    await adapter.sync()
    saved, before = cursor(engine), set(valid(simulator))
    appended = len(simulator.log.entries)
    simulator.log.append(60)
    registered(engine, simulator)
    requests = len(simulator.feed_requests)
    report = await adapter.sync()
    assert simulator.feed_requests[requests]["cursor"] == saved
    assert report.fetched == len(simulator.log.entries) - appended
    assert report.accepted == len(set(valid(simulator)) - before) > 0
    assert sorted(stored_ids(engine)) == sorted(valid(simulator))
    assert simulator.tokens_issued == 1  # the token was reused until shortly before expiry


async def test_days_of_missed_events_are_caught_up_in_bounded_runs_from_the_cursor(
    adapter: TianfuRongtongAdapter,
    simulator: TianfuRongtongSimulator,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The feed resumes from its cursor whatever the clock says (issue 18 item 4 asks
    both pull platforms): days of events behind it come in page budgets, each run
    bounded and saying when the next one continues."""
    await adapter.sync()
    simulator.log.clock += timedelta(days=6)  # the gateway was away for days
    simulator.log.append(200)
    register_enterprises(engine, *codes_in(json.dumps(simulator.log.entries)))
    monkeypatch.setattr(adapters.tianfu_rongtong.adapter, "MAX_PAGES", 3)
    runs = 0
    with caplog.at_level("INFO", logger="xyd.adapters.tianfu_rongtong"):
        while sorted(stored_ids(engine)) != sorted(valid(simulator)):
            runs += 1
            assert runs <= math.ceil(200 / (3 * adapter.page_limit)) + 1
            before = len(simulator.feed_requests)
            await adapter.sync()
            assert len(simulator.feed_requests) - before <= 3
    assert runs > 1
    assert any("page budget spent" in r.getMessage() for r in caplog.records)


async def test_429_with_retry_after_is_honoured(
    adapter: TianfuRongtongAdapter,
    simulator: TianfuRongtongSimulator,
    engine: Engine,
    sleeps: Sleeps,
) -> None:
    simulator.throttle(2, retry_after=4)
    report = await adapter.sync()
    assert report.accepted == len(valid(simulator)) == count(engine, loan_events)
    assert len(sleeps) == 2 and all(4 <= s < 5 for s in sleeps)


async def test_5xx_backs_off_then_succeeds_and_a_platform_that_stays_down_is_bounded(
    adapter: TianfuRongtongAdapter,
    simulator: TianfuRongtongSimulator,
    engine: Engine,
    sleeps: Sleeps,
) -> None:
    simulator.fail(1, status=500)
    simulator.fail(1, status=503)
    assert (await adapter.sync()).accepted == len(valid(simulator)) == count(engine, loan_events)
    assert len(sleeps) == 2 and 0 < sleeps[0] < sleeps[1]
    saved = cursor(engine)
    simulator.log.append(50)
    registered(engine, simulator)
    simulator.fail(100, status=502)
    with pytest.raises(RetriesExhausted, match="502"):
        await adapter.sync()
    assert len(sleeps) == 2 + adapter.retry.attempts - 1
    assert cursor(engine) == saved  # nothing moved: the next sync takes it from there


async def test_a_token_expiring_mid_feed_is_renewed_once(
    adapter: TianfuRongtongAdapter, simulator: TianfuRongtongSimulator, engine: Engine
) -> None:
    simulator.expire_tokens(after=2)
    report = await adapter.sync()
    assert simulator.tokens_issued == 2
    assert report.accepted == len(valid(simulator)) == count(engine, loan_events)
    pages = math.ceil(len(simulator.log.entries) / adapter.page_limit)
    assert len(simulator.feed_requests) == pages + 1  # the third page asked twice


async def test_wrong_client_credentials_are_a_clear_error(
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
    base_url: str,
    simulator: TianfuRongtongSimulator,
    sleeps: Sleeps,
) -> None:
    path = write_credentials(tmp_path / "tfrt.json", base_url, simulator.client_id, "wrong")
    async for adapter in make_adapter(settings, tmp_path, path, sleeps):
        with pytest.raises(UpstreamError, match="refused the client credentials"):
            await adapter.sync()
    assert simulator.feed_requests == []
    assert count(engine, loan_events) == 0


async def test_an_expired_cursor_restarts_from_the_last_event_without_duplicates(
    adapter: TianfuRongtongAdapter, simulator: TianfuRongtongSimulator, engine: Engine
) -> None:
    await adapter.sync()
    with engine.connect() as conn:
        last = conn.execute(
            select(loan_events.c.occurred_at).order_by(loan_events.c.id.desc()).limit(1)
        ).scalar_one()
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    simulator.log.append(40)
    registered(engine, simulator)
    simulator.expire_cursors(1)
    requests = len(simulator.feed_requests)
    report = await adapter.sync()
    gone, restart = simulator.feed_requests[requests : requests + 2]
    assert "cursor" in gone and "cursor" not in restart
    assert datetime.fromisoformat(restart["since"]) == last - timedelta(hours=1)
    assert report.duplicate > 0  # the overlap came again ...
    assert sorted(stored_ids(engine)) == sorted(valid(simulator))  # ... and was stored once


async def test_a_crash_between_storing_and_checkpointing_loses_and_doubles_nothing(
    adapter: TianfuRongtongAdapter,
    simulator: TianfuRongtongSimulator,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = adapters.tianfu_rongtong.adapter.save_position
    calls: list[str] = []

    def crash_on_second_page(conn: Connection, platform: str, name: str, value: str) -> None:
        calls.append(value)
        if len(calls) == 2:
            raise OSError("the disk went away between the events and the cursor")
        real(conn, platform, name, value)

    monkeypatch.setattr(adapters.tianfu_rongtong.adapter, "save_position", crash_on_second_page)
    with pytest.raises(OSError, match="disk went away"):
        await adapter.sync()
    first_page = simulator.log.entries[: adapter.page_limit]
    ids = {e["id"] for e in first_page} - simulator.log.invalid_ids
    assert sorted(stored_ids(engine)) == sorted(ids)  # nothing of the second page
    assert cursor(engine) == calls[0]
    monkeypatch.setattr(adapters.tianfu_rongtong.adapter, "save_position", real)
    requests = len(simulator.feed_requests)
    await adapter.sync()
    assert simulator.feed_requests[requests]["cursor"] == calls[0]  # resumed after page one
    stored = stored_ids(engine)
    assert sorted(stored) == sorted(valid(simulator)) and len(stored) == len(set(stored))


async def test_a_supply_chain_event_keeps_its_core_enterprise(
    adapter: TianfuRongtongAdapter, simulator: TianfuRongtongSimulator, engine: Engine
) -> None:
    await adapter.sync()
    event = next(e for e in valid(simulator).values() if e["type"] == "financing.disbursed")
    contract = event["financing"]["contract_no"]
    with engine.connect() as conn:
        stored = conn.execute(select(loan_events).where(loan_events.c.message_id == event["id"]))
        row = stored.one()
        loan = conn.execute(select(loans).where(loans.c.loan_no == contract)).one()
    core = event["core_enterprise"]
    assert row.credit_code == event["supplier"]["unified_code"]  # the supplier borrows
    assert row.core_enterprise_code == loan.core_enterprise_code == core["unified_code"]
    assert row.details["core_enterprise_name"] == core["name"]
    assert (row.amount_fen, row.bank_code) == (
        event["financing"]["amount_fen"],
        event["financing"]["bank_code"],
    )


async def test_missing_credentials_do_not_stop_start_up(
    settings: Settings, engine: Engine, tmp_path: Path, sleeps: Sleeps
) -> None:
    async for adapter in make_adapter(settings, tmp_path, tmp_path / "absent.json", sleeps):
        assert adapter.router() is None
        with pytest.raises(CredentialsMissing, match=r"absent\.json"):
            await adapter.sync()


def test_a_credentials_file_for_the_demo(tmp_path: Path) -> None:
    from xyd_demo.simulators.tianfu_rongtong import demo, write_demo_credentials

    write_demo_credentials(tmp_path / "tfrt")
    written = json.loads((tmp_path / "tfrt" / "simulator.json").read_text())
    assert written["base_url"] == "http://127.0.0.1:8103"
    simulator = demo(tmp_path / "tfrt", events=20)
    assert simulator.client_id == written["client_id"]
    assert len(simulator.log.unique()) == 20


def test_a_misspelled_setting_stops_start_up() -> None:
    block = {"enabled": True, "simulator_file": "s.json", "breaker_open": 30}
    with pytest.raises(ValueError, match="tianfu-rongtong: unknown setting 'breaker_open'"):
        check_block("tianfu-rongtong", block)
