"""盈创动力 Yingchuang Dongli: daily CSV batches pulled from the simulator over real HTTP."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, select

from adapters.http import RetriesExhausted, UpstreamError
from adapters.pull import CredentialsMissing
from adapters.registry import check_block
from adapters.yingchuang.adapter import MAX_BACKFILL_DAYS, YingchuangAdapter
from gateway.app import create_app
from gateway.db import make_async_engine
from gateway.loans.events import BEIJING
from gateway.positions import read_position
from gateway.settings import Settings
from gateway.state import state_of
from gateway.store.tables import consents, loan_events, loans, platform_dead_letters
from testkit import builders
from testkit.builders import codes_in, register_enterprises
from testkit.clients import register
from testkit.live import serve
from xyd_demo.simulators.yingchuang import (
    BANKS,
    HEADER,
    YingchuangSimulator,
    day_rows,
    encode_csv,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"
TODAY = datetime.now(BEIJING).date()
YESTERDAY = TODAY - timedelta(days=1)
STATUS_AFTER = {
    "申请": "applied", "授权": "applied", "审批通过": "approved", "审批拒绝": "rejected",
    "放款": "disbursed", "逾期": "overdue", "违约": "defaulted", "结清": "settled",
}  # fmt: skip


class Sleeps(list[float]):
    """Stands in for asyncio.sleep: records what the adapter waited, without waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def simulator() -> YingchuangSimulator:
    return YingchuangSimulator(seed=7, loans_per_day=8)


@pytest.fixture
def base_url(simulator: YingchuangSimulator) -> Iterator[str]:
    with serve(simulator.app) as url:
        yield url


def gateway_settings(settings: Settings, tmp_path: Path, credentials: Path) -> Settings:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    block = {"enabled": True, "simulator_file": str(credentials), "schedule_s": 3600}
    (config / "platforms.yaml").write_text(yaml.safe_dump({"yingchuang": block}))
    settings.config_dir = config
    settings.public_base_url = "http://testserver"
    return settings


def write_credentials(path: Path, base_url: str, key: str, secret: str) -> Path:
    path.write_text(json.dumps({"base_url": base_url, "app_key": key, "app_secret": secret}))
    return path


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


async def make_adapter(
    settings: Settings, tmp_path: Path, credentials: Path, sleeps: Sleeps
) -> AsyncIterator[YingchuangAdapter]:
    settings.run_background = False
    app = create_app(gateway_settings(settings, tmp_path, credentials))
    state = state_of(app)
    state.engine = make_async_engine(settings)
    state.platform_services.bind(state.engine)
    adapter = state.platforms["yingchuang"]
    assert isinstance(adapter, YingchuangAdapter)
    adapter.retry = replace(adapter.retry, sleep=sleeps)
    yield adapter
    await state.engine.dispose()


@pytest.fixture
async def adapter(
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
    base_url: str,
    simulator: YingchuangSimulator,
    sleeps: Sleeps,
) -> AsyncIterator[YingchuangAdapter]:
    for code in BANKS:
        register(engine, f"bank-{code.lower()}", org_code=code)
    # The enterprises the platform's recent days name, in the registry (authorisations
    # need them); the days' rows are the simulator's, deterministic for its seed.
    days = [TODAY - timedelta(days=back) for back in range(-1, 8)]
    rows = [day_rows(simulator.seed, day, simulator.loans_per_day) for day in days]
    register_enterprises(engine, *codes_in(repr(rows)))
    path = write_credentials(
        tmp_path / "yc.json", base_url, simulator.app_key, simulator.app_secret
    )
    async for built in make_adapter(settings, tmp_path, path, sleeps):
        yield built


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def state(engine: Engine, name: str) -> str | None:
    with engine.connect() as conn:
        return read_position(conn, "yingchuang", name)


def file_line(data: bytes, serial: str) -> int:
    """The physical line (1 = header) on which a row with this 流水号 starts."""
    lines = data.decode("utf-8-sig").split("\r\n")
    return next(n for n, line in enumerate(lines, start=1) if line.startswith(serial + ","))


async def test_a_day_syncs_every_event_type_and_the_ledger_folds(
    adapter: YingchuangAdapter, simulator: YingchuangSimulator, engine: Engine
) -> None:
    batch = simulator.publish(YESTERDAY)
    report = await adapter.sync(day=YESTERDAY)
    serials = {row[0] for row in batch.valid}
    assert report.accepted == len(serials) == count(engine, loan_events)
    assert report.duplicate == len(batch.valid) - len(serials)
    assert report.days == [
        {"day": f"{YESTERDAY:%Y%m%d}", "status": "synced", "files": 1,
         "rows": sum(batch.rows.values()), "accepted": len(serials),
         "duplicate": report.duplicate, "rejected": len(report.rejected)},
    ]  # fmt: skip
    with engine.connect() as conn:
        kinds = set(conn.execute(select(loan_events.c.event_type).distinct()).scalars())
        folded = {r.loan_no: r for r in conn.execute(select(loans))}
        granted = list(conn.execute(select(consents)))
    assert len(kinds) == 9
    last: dict[str, str] = {}
    for row in sorted(batch.valid, key=lambda r: r[8]):  # stable: file order within a day
        last[row[4]] = row[1]
    assert folded.keys() == last.keys()
    for loan_no, kind in last.items():
        # A repayment alone says nothing of the status: it follows the loan's history,
        # part of which lies in earlier days' files.
        expected = ("applied", "disbursed") if kind == "还款" else (STATUS_AFTER[kind],)
        assert folded[loan_no].status in expected, (loan_no, kind)
    disbursed = next(r for r in batch.valid if r[1] == "放款")
    whole, _, part = disbursed[6].partition(".")
    assert folded[disbursed[4]].amount_fen == int(whole) * 1_000_000 + int(part.ljust(6, "0"))
    assert folded[disbursed[4]].credit_code == disbursed[2]
    authorisations = [r for r in batch.valid if r[1] == "授权"]
    assert len(granted) == len(authorisations) > 0
    assert {tuple(c.scopes) for c in granted} == {("basic", "judicial", "penalties", "tax")}
    assert {c.grantee_org_code for c in granted} <= set(BANKS)


async def test_a_rerun_stores_nothing_twice(
    adapter: YingchuangAdapter, simulator: YingchuangSimulator, engine: Engine
) -> None:
    simulator.publish(YESTERDAY)
    first = await adapter.sync(day=YESTERDAY)
    stored, dead = count(engine, loan_events), count(engine, platform_dead_letters)
    again = await adapter.sync(day=YESTERDAY)
    assert (again.accepted, again.duplicate) == (0, first.accepted + first.duplicate)
    assert again.rejected == first.rejected  # still reported ...
    assert count(engine, loan_events) == stored
    assert count(engine, platform_dead_letters) == dead > 0  # ... but kept once


async def test_a_file_not_matching_its_checksum_is_refused_whole(
    adapter: YingchuangAdapter, simulator: YingchuangSimulator, engine: Engine
) -> None:
    simulator.publish(YESTERDAY)
    simulator.corrupt(YESTERDAY)
    report = await adapter.sync(day=YESTERDAY)
    assert report.accepted == 0
    assert [r["line"] for r in report.rejected] == [None]
    assert "SHA-256" in report.rejected[0]["reason"]
    assert report.days[0]["status"] == "incomplete"
    assert count(engine, loan_events) == count(engine, platform_dead_letters) == 0
    assert state(engine, "last_day") is None
    simulator.corrupt(YESTERDAY, on=False)  # the next sync tries again
    assert (await adapter.sync(day=YESTERDAY)).accepted == count(engine, loan_events) > 0


async def test_quoted_commas_and_quotes_a_bom_and_crlf_parse(
    adapter: YingchuangAdapter, simulator: YingchuangSimulator, engine: Engine
) -> None:
    names = [
        '成都"星河"智能装备有限公司',
        "四川天府精密制造有限公司(高新区, 第二分公司)",
        '四川锦江软件股份有限公司, "专精特新"',
        "成都岷江\r\n生物医药有限公司",  # a quoted line break: one record on two lines
    ]
    code = builders.code(1)
    day = f"{YESTERDAY:%Y%m%d}"
    rows = [
        [f"Q{i}", "申请", code, name, f"HT-Q{i}", "BOCD", "1.5", "12", day, ""]
        for i, name in enumerate(names)
    ]
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    rows.append(["Q9", "申请", wrong, "坏行", "HT-Q9", "BOCD", "1", "12", day, ""])
    batch = simulator.publish(YESTERDAY, rows=rows, invalid=0)
    data = next(iter(batch.files.values()))
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") == 7
    assert data == encode_csv(rows)
    report = await adapter.sync(day=YESTERDAY)
    assert report.accepted == 4
    assert [(r["line"], r["id"]) for r in report.rejected] == [(7, "Q9")]
    with engine.connect() as conn:
        stored = dict(conn.execute(select(loan_events.c.message_id, loan_events.c.details)).all())
        amounts = set(conn.execute(select(loan_events.c.amount_fen)).scalars())
    assert [stored[f"Q{i}"]["enterprise_name"] for i in range(4)] == names
    assert amounts == {1_500_000}


async def test_a_file_whose_header_differs_is_refused_whole(
    adapter: YingchuangAdapter, simulator: YingchuangSimulator, engine: Engine
) -> None:
    swapped = [*HEADER[:6], HEADER[7], HEADER[6], *HEADER[8:]]  # 期限 before 金额
    simulator.publish(YESTERDAY, header=swapped)
    report = await adapter.sync(day=YESTERDAY)
    assert [(r["line"], "header" in r["reason"]) for r in report.rejected] == [(None, True)]
    assert count(engine, loan_events) == count(engine, platform_dead_letters) == 0
    assert report.days[0]["status"] == "incomplete"


async def test_invalid_rows_are_rejected_by_line_and_the_rest_stored(
    adapter: YingchuangAdapter, simulator: YingchuangSimulator, engine: Engine
) -> None:
    batch = simulator.publish(YESTERDAY, invalid=6)
    data = next(iter(batch.files.values()))
    report = await adapter.sync(day=YESTERDAY)
    assert len(report.rejected) == 6
    for reject in report.rejected:
        assert reject["line"] == file_line(data, reject["id"]) > 1
    reasons = " ".join(r["reason"] for r in report.rejected)
    for column in ("统一社会信用代码", "业务类型", "金额(万元)", "发生日期", "expected 10 fields"):
        assert column in reasons
    with engine.connect() as conn:
        dead = list(conn.execute(select(platform_dead_letters)))
    assert sorted(d.reason.split(":")[0] for d in dead) == sorted(
        f"{YESTERDAY:%Y%m%d}/{name} line {r['line']}"
        for name in batch.files
        for r in report.rejected
    )
    assert count(engine, loan_events) == len({r[0] for r in batch.valid}) == report.accepted


async def test_429_with_retry_after_is_honoured_then_the_sync_succeeds(
    adapter: YingchuangAdapter, simulator: YingchuangSimulator, engine: Engine, sleeps: Sleeps
) -> None:
    simulator.publish(YESTERDAY)
    simulator.throttle(2, retry_after=3)
    report = await adapter.sync(day=YESTERDAY)
    assert report.accepted == count(engine, loan_events) > 0
    assert len(sleeps) == 2 and all(3 <= s < 4 for s in sleeps)
    assert len(simulator.requests) == 2 + 2  # two refused, then the manifest and the file


async def test_503_twice_then_success_and_a_platform_that_stays_down(
    adapter: YingchuangAdapter, simulator: YingchuangSimulator, engine: Engine, sleeps: Sleeps
) -> None:
    simulator.publish(YESTERDAY)
    simulator.fail(2, status=503)
    assert (await adapter.sync(day=YESTERDAY)).accepted == count(engine, loan_events) > 0
    assert len(sleeps) == 2 and 0 < sleeps[0] < sleeps[1]  # backing off
    simulator.fail(50, status=502)
    with pytest.raises(RetriesExhausted, match="502"):
        await adapter.sync(day=TODAY)
    assert len(sleeps) == 2 + adapter.retry.attempts - 1  # bounded


async def test_a_day_not_yet_published_is_not_an_error(
    adapter: YingchuangAdapter, simulator: YingchuangSimulator, engine: Engine
) -> None:
    report = await adapter.sync(day=TODAY)
    assert report.days == [{"day": f"{TODAY:%Y%m%d}", "status": "not_published", "files": 0}]
    assert report.position is None and report.accepted == 0
    assert count(engine, loan_events) == 0
    assert state(engine, "last_day") is None


async def test_wrong_credentials_are_a_clear_error_and_store_nothing(
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
    base_url: str,
    simulator: YingchuangSimulator,
    sleeps: Sleeps,
) -> None:
    simulator.publish(YESTERDAY)
    path = write_credentials(tmp_path / "yc.json", base_url, simulator.app_key, "not-the-secret")
    async for adapter in make_adapter(settings, tmp_path, path, sleeps):
        with pytest.raises(UpstreamError, match="401"):
            await adapter.sync(day=YESTERDAY)
    assert count(engine, loan_events) == count(engine, platform_dead_letters) == 0


async def test_missing_credentials_do_not_stop_start_up(
    settings: Settings, engine: Engine, tmp_path: Path, sleeps: Sleeps
) -> None:
    async for adapter in make_adapter(settings, tmp_path, tmp_path / "absent.json", sleeps):
        assert adapter.router() is None
        with pytest.raises(CredentialsMissing, match=r"absent\.json"):
            await adapter.sync()


async def test_the_last_synced_day_and_its_counts_are_recorded(
    adapter: YingchuangAdapter, simulator: YingchuangSimulator, engine: Engine
) -> None:
    batches = [simulator.publish(TODAY - timedelta(days=back)) for back in range(1, -1, -1)]
    report = await adapter.sync()  # the schedule's first sync: the whole backfill limit
    assert len(report.days) == MAX_BACKFILL_DAYS and report.skipped is None
    assert [d["day"] for d in report.days if d["status"] == "synced"] == [
        f"{YESTERDAY:%Y%m%d}",
        f"{TODAY:%Y%m%d}",
    ]
    # Two older days the platform published late:
    batches += [simulator.publish(TODAY - timedelta(days=back)) for back in (3, 2)]
    assert state(engine, "last_day") == report.position == f"{TODAY:%Y%m%d}"
    today = report.days[-1]
    counts = {k: today[k] for k in ("rows", "accepted", "duplicate", "rejected")}
    assert json.loads(state(engine, "last_day_rows") or "") == counts
    assert (report.last_day, report.last_day_rows) == (f"{TODAY:%Y%m%d}", counts)  # CLI output
    old = await adapter.sync(day=TODAY - timedelta(days=3))  # re-syncing an old day ...
    assert old.accepted > 0 and state(engine, "last_day") == f"{TODAY:%Y%m%d}"  # ... keeps it
    since = datetime.combine(TODAY - timedelta(days=3), datetime.min.time(), BEIJING)
    backfill = await adapter.sync(since=since.astimezone(UTC))
    assert [d["status"] for d in backfill.days] == ["synced"] * 4
    assert backfill.accepted > 0 and backfill.duplicate > 0  # one day was new
    assert count(engine, loan_events) == len({row[0] for b in batches for row in b.valid})
    with pytest.raises(ValueError, match="31 days"):
        await adapter.sync(since=since - timedelta(days=40))


async def test_the_schedule_catches_up_over_every_day_missed_since_its_position(
    adapter: YingchuangAdapter, simulator: YingchuangSimulator, engine: Engine
) -> None:
    """The gateway was down (or the clock jumped) for days: the next scheduled run
    resumes from the last synced day, not from yesterday."""
    first = await adapter.sync(day=TODAY - timedelta(days=6))  # nothing published yet
    simulator.publish(TODAY - timedelta(days=6))
    await adapter.sync(day=TODAY - timedelta(days=6))
    assert first.position is None and state(engine, "last_day") == f"{TODAY - timedelta(6):%Y%m%d}"
    missed = [simulator.publish(TODAY - timedelta(days=back)) for back in range(5, 0, -1)]
    report = await adapter.sync()
    assert report.window == f"{TODAY - timedelta(days=6):%Y%m%d}..{TODAY:%Y%m%d}"
    assert [d["status"] for d in report.days] == ["synced"] * 6 + ["not_published"]
    assert report.skipped is None
    stored = {row[0] for b in missed for row in b.valid}
    with engine.connect() as conn:
        ids = set(conn.execute(select(loan_events.c.message_id)).scalars())
    assert stored <= ids
    assert state(engine, "last_day") == f"{YESTERDAY:%Y%m%d}"
    again = await adapter.sync()  # caught up: yesterday (late files) and today
    assert again.window == f"{YESTERDAY:%Y%m%d}..{TODAY:%Y%m%d}" and again.accepted == 0


async def test_a_position_past_the_backfill_limit_catches_up_the_limit_and_says_so(
    adapter: YingchuangAdapter,
    simulator: YingchuangSimulator,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = TODAY - timedelta(days=45)
    simulator.publish(old)
    await adapter.sync(day=old)
    edge = TODAY - timedelta(days=MAX_BACKFILL_DAYS - 1)
    simulator.publish(edge)
    simulator.publish(TODAY - timedelta(days=40))  # between: past the limit, left behind
    before = REGISTRY.get_sample_value(
        "xyd_platform_days_skipped_total", {"platform": "yingchuang"}
    )
    with caplog.at_level("WARNING", logger="xyd.adapters.yingchuang"):
        report = await adapter.sync()
    assert len(report.days) == MAX_BACKFILL_DAYS  # one bounded run, never a loop
    assert report.days[0] == {**report.days[0], "day": f"{edge:%Y%m%d}", "status": "synced"}
    missed = (edge - old).days - 1
    assert report.skipped == f"{old + timedelta(1):%Y%m%d}..{edge - timedelta(1):%Y%m%d}"
    assert report.as_dict()["skipped"] == report.skipped
    after = REGISTRY.get_sample_value("xyd_platform_days_skipped_total", {"platform": "yingchuang"})
    assert (after or 0) - (before or 0) == missed
    assert any(f"{missed} days" in r.getMessage() for r in caplog.records)
    assert state(engine, "last_day") == f"{edge:%Y%m%d}"
    requested = {r.split("/")[0] for r in simulator.requests}
    assert f"{TODAY - timedelta(days=40):%Y%m%d}" not in requested


def test_the_app_schedule_pulls_in_the_background(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    simulator = YingchuangSimulator(seed=3)
    simulator.publish(YESTERDAY)
    with serve(simulator.app) as url:
        path = write_credentials(tmp_path / "yc.json", url, simulator.app_key, simulator.app_secret)
        app = create_app(gateway_settings(settings, tmp_path, path))
        with serve(app):
            deadline = time.monotonic() + 20
            while state(engine, "last_day") is None and time.monotonic() < deadline:
                time.sleep(0.1)
    assert state(engine, "last_day") == f"{YESTERDAY:%Y%m%d}"
    assert count(engine, loan_events) > 0


def test_a_credentials_file_for_the_demo(tmp_path: Path) -> None:
    from xyd_demo.simulators.yingchuang import demo, write_demo_credentials

    write_demo_credentials(tmp_path / "yingchuang")
    written = json.loads((tmp_path / "yingchuang" / "simulator.json").read_text())
    assert written["base_url"] == "http://127.0.0.1:8102"
    simulator = demo(tmp_path / "yingchuang", days=2, today=date(2026, 11, 21))
    assert simulator.app_key == written["app_key"]
    assert sorted(simulator.batches) == ["20261119", "20261120"]


def test_a_misspelled_setting_stops_start_up() -> None:
    block = {"enabled": True, "simulator_file": "s.json", "schedule_secs": 600}
    with pytest.raises(ValueError, match="yingchuang: unknown setting 'schedule_secs'"):
        check_block("yingchuang", block)
