"""The demo's platforms: simulators on ports of their own, lending to seeded enterprises."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import Engine, select

from adapters.yingchuang.wire import parse_file
from gateway.keys import jose
from gateway.store.tables import enterprises
from xyd_demo.platforms import (
    CALLBACK_FILE,
    Served,
    borrowers,
    credentials_dir,
    serve_simulators,
    write_credentials,
)
from xyd_demo.seed import seed_demo
from xyd_demo.simulators import chuangfu_tianfu, kechuangtong, nongdaitong

KEY = b"k" * 32


@pytest.fixture
def stop() -> Iterator[list[Served]]:
    served: list[Served] = []
    yield served
    for one in served:
        one.server.should_exit = True


def wait_started(served: list[Served]) -> None:
    deadline = time.monotonic() + 20
    while not all(one.server.started for one in served):
        assert time.monotonic() < deadline, "simulators did not start"
        time.sleep(0.05)


def test_two_demos_on_one_host_each_talk_to_their_own_simulators(
    tmp_path: Path, stop: list[Served]
) -> None:
    demos = [tmp_path / "one", tmp_path / "two"]
    for state in demos:
        write_credentials(state)
        stop.extend(serve_simulators(state))
    wait_started(stop)
    read = {
        (state, platform): json.loads(
            (credentials_dir(state, platform) / "simulator.json").read_text()
        )
        for state in demos
        for platform in ("yingchuang", "tianfu-rongtong")
    }
    urls = [c["base_url"] for c in read.values()]
    callbacks = [(credentials_dir(s, "kechuangtong") / CALLBACK_FILE).read_text() for s in demos]
    assert len(set(urls)) == 4 and len(set(callbacks)) == 2  # nobody shares a port
    day = f"{date.today() - timedelta(days=2):%Y%m%d}"
    for state in demos:
        mine = read[(state, "yingchuang")]
        auth = (mine["app_key"], mine["app_secret"])
        manifest = httpx.get(f"{mine['base_url']}/openapi/batches/{day}/manifest.json", auth=auth)
        assert manifest.status_code == 200  # the simulator at my address knows my key
        tianfu = read[(state, "tianfu-rongtong")]
        token = httpx.post(
            tianfu["base_url"] + "/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": tianfu["client_id"],
                  "client_secret": tianfu["client_secret"]},
        )  # fmt: skip
        assert token.status_code == 200
        assert (credentials_dir(state, "yingchuang") / "simulator.json").stat().st_mode & 0o077 == 0
    other = read[(demos[1], "yingchuang")]
    wrong = httpx.get(
        f"{read[(demos[0], 'yingchuang')]['base_url']}/openapi/batches/{day}/manifest.json",
        auth=(other["app_key"], other["app_secret"]),
    )
    assert wrong.status_code == 401


def test_the_callback_receiver_verifies_lists_and_logs_what_it_gets(
    tmp_path: Path, stop: list[Served], caplog: pytest.LogCaptureFixture
) -> None:
    write_credentials(tmp_path)
    stop.extend(serve_simulators(tmp_path))
    wait_started(stop)
    directory = credentials_dir(tmp_path, "kechuangtong")
    url = (directory / CALLBACK_FILE).read_text().strip()
    secret = (directory / "secret").read_bytes().strip()
    alert = {"alertId": "alert-1", "creditCode": "91510100MA61234567", "rule": "overdue_30"}
    raw = orjson.dumps(alert)
    stamp = str(int(time.time()))
    with caplog.at_level("INFO", logger="xyd.simulators.kechuangtong"):
        good = httpx.post(url, content=raw, headers={
            "X-KCT-Timestamp": stamp, "X-KCT-Event-Id": "alert-1",
            "X-KCT-Signature": kechuangtong.sign(secret, stamp, raw)})  # fmt: skip
        forged = httpx.post(url, content=raw, headers={
            "X-KCT-Timestamp": stamp, "X-KCT-Event-Id": "alert-1",
            "X-KCT-Signature": kechuangtong.sign(b"not-it", stamp, raw)})  # fmt: skip
    assert (good.status_code, forged.status_code) == (200, 401)
    listed = httpx.get(url).json()["received"]
    assert [(r["alertId"], r["verified"], r["status"]) for r in listed] == [
        ("alert-1", True, 200), ("alert-1", False, 401)
    ]  # fmt: skip
    lines = [r.getMessage() for r in caplog.records]
    assert any("alert-1" in line and "verified" in line for line in lines)


def test_every_stream_lends_to_seeded_enterprises(engine: Engine, tmp_path: Path) -> None:
    seed_demo(engine, KEY, enterprises=80, seed=42, out_dir=tmp_path / "demo", as_of=date.today())
    lenders = borrowers(tmp_path)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(enterprises.c.credit_code, enterprises.c.name)).all())
        closed = set(
            conn.execute(
                select(enterprises.c.credit_code).where(enterprises.c.status == "deregistered")
            ).scalars()
        )
    assert lenders and all(stored[code] == name for code, name in lenders)
    assert not closed & {code for code, _ in lenders}
    seeded = set(stored)
    write_credentials(tmp_path)

    kct = kechuangtong.stream(60, borrowers=lenders)
    named = {orjson.loads(m.raw)["enterprise"]["creditCode"] for m in kct if m.kind == "valid"}
    assert named and named <= seeded

    signer = chuangfu_tianfu.Simulator(borrowers=lenders)
    tokens = [m.token for m in signer.stream(10) if m.expect == "accepted"]
    payloads = [json.loads(jose.b64decode(t.split(".")[1])) for t in tokens]
    assert {p["body"]["unified_credit_code"] for p in payloads} <= seeded

    plans = nongdaitong.stream(7, loans=20, borrowers=lenders)
    orgs = {p.borrower.number for p in plans if p.borrower.kind == "ORG"}
    assert orgs and orgs <= seeded

    from xyd_demo.simulators import tianfu_rongtong, yingchuang

    feed = tianfu_rongtong.demo(credentials_dir(tmp_path, "tianfu-rongtong"), borrowers=lenders)
    suppliers = {e["supplier"]["unified_code"] for e in feed.log.unique().values()}
    assert len(suppliers & seeded) > len(lenders) // 2  # the malformed few aside

    batches = yingchuang.demo(credentials_dir(tmp_path, "yingchuang"), borrowers=lenders)
    today = date.today()
    assert f"{today - timedelta(days=1):%Y%m%d}" in batches.batches or (
        f"{today:%Y%m%d}" in batches.batches  # Beijing is ahead of UTC
    )
    for batch in batches.batches.values():
        for data in batch.files.values():
            events, _, _ = parse_file(data)  # seeded names parse, quotes and all
            assert events and {e.credit_code for e in events} <= seeded
            assert all(e.details["enterprise_name"] == stored[e.credit_code] for e in events)


def test_every_bank_the_platforms_lend_through_is_a_demo_bank(
    engine: Engine, tmp_path: Path
) -> None:
    """So the authorisations the platforms sign become consents, not warnings."""
    from gateway.store.tables import clients
    from testkit.clients import DEPARTMENTS
    from xyd_demo.clients import register_demo_clients
    from xyd_demo.simulators import tianfu_rongtong, yingchuang

    with engine.begin() as conn:
        register_demo_clients(conn, tmp_path / "clients", DEPARTMENTS)
        banks = set(
            conn.execute(
                select(clients.c.org_code).where(clients.c.client_type == "bank")
            ).scalars()
        )
    named = {
        *kechuangtong.BANKS, *nongdaitong.BANKS, *chuangfu_tianfu.BANKS,
        *yingchuang.BANKS, *tianfu_rongtong.BANKS,
    }  # fmt: skip
    assert named <= banks
    from xyd_demo.clients import DEMO_CLIENTS

    # A key file and a registration for each demo client, none for the lenders.
    assert len(list((tmp_path / "clients").glob("*.jwk"))) == len(DEMO_CLIENTS)
    assert len(list((tmp_path / "clients").glob("*.json"))) == len(DEMO_CLIENTS)
