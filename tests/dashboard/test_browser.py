"""The dashboard in a real browser: Debian's Chromium driven by Playwright,
against `xyd serve` and an `xyd monitor` worker on PostgreSQL and Redis.

A risk officer logs in, sees an alert appear without reloading after its event
is published on the stream, acknowledges it on its evidence page and sees the
status change, also live in a second tab. A wrong password and a forged CSRF
token fail, the latter with a page saying so. An alert's evidence reads in
yuan and Beijing time with enterprise names, in Chinese and in English, and
leads to the enterprise's loans. Screenshots and the measured event-to-dashboard latency are kept
under `test-artifacts/` (or `XYD_TEST_ARTIFACTS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from redis.asyncio import Redis
from sqlalchemy import Engine, create_engine, insert

from gateway.dashboard import accounts
from gateway.monitor.bus import RedisStreamBus
from gateway.store.tables import enterprises
from policies.risk.base import MonitorEvent
from testkit.browser import BROWSER_MARKS, CHROMIUM, LAUNCH_ARGS
from testkit.builders import code
from testkit.services import Postgres, free_port, redis_server
from tests.conftest import fresh_pg_database
from tests.loans.test_ledger import event as loan_event
from tests.loans.test_ledger import run as store_loans

PASSWORD = "officer password 1"
ARTIFACTS = Path(os.environ.get("XYD_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
LIVE_CODE = code(777)
NAMES = {code(1): "成都锦程精密机械有限公司", code(2): "四川天府核心制造集团有限公司"}
LATENCY_SAMPLES = 10
# Wall-clock arrival time of each row, keyed by its credit code (same host, same clock).
ARRIVALS_JS = """() => {
  window.xydArrivals = {};
  new MutationObserver((changes) => {
    for (const change of changes) for (const node of change.addedNodes) {
      const cell = node.nodeType === 1 && node.querySelector("td.mono a");
      if (cell && !(cell.textContent in window.xydArrivals)) {
        window.xydArrivals[cell.textContent] = Date.now();
      }
    }
  }).observe(document.querySelector("#alert-table tbody"), { childList: true });
}"""

pytestmark = BROWSER_MARKS


@dataclass
class Stack:
    base: str
    redis_url: str
    engine: Engine


def _wait_ready(base: str, procs: list[subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        for proc in procs:
            assert proc.poll() is None, f"a process exited early; see {logs}"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"the gateway did not become ready; see {logs}")


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        accounts.create_user(conn, "li.na", "risk_officer", PASSWORD)
        accounts.create_user(conn, "zhao.lei", "auditor", PASSWORD)
        now = datetime.now(UTC)
        conn.execute(insert(enterprises), [
            {"credit_code": c, "name": name, "entity_type": "company", "division_code": "510104",
             "status": "active", "created_at": now, "updated_at": now}
            for c, name in NAMES.items()
        ])  # fmt: skip
    # Loans on three platforms through the ledger, as the adapters store them:
    # the charts have volume and an overdue ratio, and the monitor relays them.
    start = datetime.now(UTC) - timedelta(days=3)
    n = 0
    for p, platform in enumerate(("kechuangtong", "nongdaitong", "yingchuang")):
        for k in range(4):
            n += 1
            loan = {"platform": platform, "loan_no": f"{platform}-{k}", "credit_code": code(n),
                    "occurred_at": start + timedelta(minutes=n)}  # fmt: skip
            steps = [loan_event(10 * n, "loan_disbursed", amount_fen=(k + 1) * 50_000_000, **loan)]
            if k <= p:
                late = {**loan, "occurred_at": start + timedelta(hours=n)}
                days = 35 if k else 65
                steps.append(loan_event(10 * n + 1, "repayment_overdue", days_overdue=days, **late))
            store_loans(engine, *steps)


@pytest.fixture
def stack(pg: Postgres, tmp_path: Path) -> Iterator[Stack]:
    url = fresh_pg_database(pg)
    engine = create_engine(url)
    _seed(engine)
    port = free_port()
    with redis_server() as redis:
        env = {
            **os.environ,
            "XYD_STATE_DIR": str(tmp_path / ".xyd"),
            "XYD_DATABASE_URL": url,
            "XYD_REDIS_URL": redis.url,
            "XYD_PORT": str(port),
            "XYD_WORKERS": "1",
        }
        logs = tmp_path / "logs"
        logs.mkdir()
        procs = [
            subprocess.Popen([sys.executable, "-m", "gateway.cli", *cmd], env=env,
                             stdout=subprocess.DEVNULL, stderr=(logs / f"{cmd[0]}.log").open("wb"))
            for cmd in (["serve"], ["monitor", "--consumer", "browser-test"])
        ]  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, procs, logs)
            yield Stack(base, redis.url, engine)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            engine.dispose()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _publish(redis_url: str, events: list[MonitorEvent]) -> None:
    async def go() -> None:
        redis = Redis.from_url(redis_url)
        try:
            await RedisStreamBus(redis).publish(events)
        finally:
            await redis.aclose()

    # Playwright's sync API runs its own loop in this thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, go()).result()


def _log_in(page: Page, base: str, name: str, password: str) -> None:
    page.goto(base + "/dashboard?lang=en")
    expect(page).to_have_url(base + "/dashboard/login?lang=en")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_an_officer_sees_an_alert_arrive_live_and_works_it(stack: Stack, browser: Browser) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)

    _log_in(page, stack.base, "li.na", "not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong name or password")
    _log_in(page, stack.base, "li.na", PASSWORD)
    expect(page).to_have_url(stack.base + "/dashboard?lang=en")
    expect(page.locator("#user")).to_have_text("li.na")
    expect(page.locator("#live.on")).to_be_visible()  # the stream is connected
    # The seeded overdue loans were relayed and judged by the monitor.
    expect(page.locator("tbody tr").first).to_be_visible()
    assert page.locator("#chart-per-platform svg rect").count() == 3
    before = int(page.locator('[data-count="critical"]').inner_text())

    # A second tab watching every unresolved alert sees the status change live.
    watcher = context.new_page()
    watcher.goto(stack.base + "/dashboard?status=active")  # in Chinese
    expect(watcher.locator("#live.on")).to_be_visible()

    occurred = datetime.now(UTC)
    _publish(stack.redis_url, [MonitorEvent(
        "loan:kechuangtong:live-1", "loan", occurred, LIVE_CODE,
        {"platform": "kechuangtong", "event_type": "repayment_overdue", "loan_no": "KCT-LIVE",
         "bank_code": "BOCD", "days_overdue": 95},
    )])  # fmt: skip
    row = page.locator("tbody tr", has_text=LIVE_CODE)
    expect(row).to_be_visible()
    expect(row.locator(".sev")).to_have_text("Critical")
    expect(page.locator('[data-count="critical"]')).to_have_text(str(before + 1))
    assert page.locator("tbody tr").first.get_attribute("data-severity") == "critical"
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    row.locator("td.title a").click()
    expect(page.locator("#alert-status")).to_have_attribute("data-status", "open")
    alert_url = page.url
    expect(page.locator("table.evidence")).to_contain_text("loan:kechuangtong:live-1")
    # A forged CSRF token is refused and changes nothing.
    form = page.locator("form.work", has=page.locator("#acknowledge"))
    form.locator("input[name=csrf]").evaluate("input => { input.value = 'forged' }")
    form.locator("textarea").fill("forged")
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        page.click("#acknowledge")
    assert refused.value.status == 403
    # A page for the officer, in English, with the way back; not a problem document.
    expect(page.locator("h1")).to_have_text("Request refused")
    expect(page.get_by_role("alert")).to_contain_text("CSRF token")
    page.screenshot(path=str(ARTIFACTS / "csrf-refused.png"), full_page=True)
    page.click("#back")
    expect(page).to_have_url(alert_url)
    expect(page.locator("#alert-status")).to_have_attribute("data-status", "open")

    page.locator("form.work", has=page.locator("#acknowledge")).locator("textarea").fill(
        "已致电科创通核实，借款人承诺本周内还款。"
    )
    page.click("#acknowledge")
    expect(page.locator("#alert-status")).to_have_attribute("data-status", "acknowledged")
    expect(page.locator("#history")).to_contain_text("user:li.na")
    expect(page.locator("#history")).to_contain_text("借款人承诺本周内还款")
    page.screenshot(path=str(ARTIFACTS / "alert.png"), full_page=True)

    watched = watcher.locator("tbody tr", has_text=LIVE_CODE)
    expect(watched).to_have_attribute("data-status", "acknowledged")
    expect(watched.locator(".status")).to_have_text("已确认")
    watcher.screenshot(path=str(ARTIFACTS / "dashboard-active.png"), full_page=True)

    # Event-to-dashboard latency: more events, one at a time, each timed from
    # its publication on the stream to its row being visible in the browser.
    # The browser notes when each row arrives (Playwright's own waiting polls
    # with growing pauses, which would add to what is measured).
    watcher.evaluate(ARRIVALS_JS)
    latencies = []
    for n in range(LATENCY_SAMPLES):
        sme = code(800 + n)
        published = time.time() * 1000
        _publish(stack.redis_url, [MonitorEvent(
            f"loan:nongdaitong:lat-{n}", "loan", datetime.now(UTC), sme,
            {"platform": "nongdaitong", "event_type": "repayment_overdue", "loan_no": f"N-{n}",
             "days_overdue": 31},
        )])  # fmt: skip
        expect(watcher.locator("tbody tr", has_text=sme)).to_be_visible()
        arrived = watcher.evaluate("code => window.xydArrivals[code]", sme)
        latencies.append(arrived - published)
    latencies.sort()
    summary = (
        f"event published on the Redis stream -> row visible in the browser, "
        f"{len(latencies)} events: median {statistics.median(latencies):.0f} ms, "
        f"max {latencies[-1]:.0f} ms, min {latencies[0]:.0f} ms\n"
    )
    (ARTIFACTS / "event-to-dashboard.txt").write_text(summary)
    print(summary)


def test_a_forged_login_csrf_token_and_an_auditor_cannot_work(
    stack: Stack, browser: Browser
) -> None:
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(stack.base + "/dashboard/login?lang=en")
    page.fill("input[name=name]", "li.na")
    page.fill("input[name=password]", PASSWORD)
    page.locator("input[name=csrf]").evaluate("input => { input.value = 'forged' }")
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        page.click("button[type=submit]")
    assert refused.value.status == 403
    page.goto(stack.base + "/dashboard?lang=en")
    expect(page).to_have_url(stack.base + "/dashboard/login?lang=en")  # not logged in

    _log_in(page, stack.base, "zhao.lei", PASSWORD)
    expect(page.locator("#role")).to_have_attribute("data-role", "auditor")
    page.locator("tbody tr td.title a").first.click()
    expect(page.locator(".muted", has_text="read-only")).to_be_visible()
    assert page.locator("form.work").count() == 0


def test_the_evidence_page_reads_in_yuan_with_names_in_both_languages(
    stack: Stack, browser: Browser
) -> None:
    """What a credit officer sees: labelled facts, yuan, Beijing time, the
    enterprise's name, English when asked for, and the way to its loans."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(15_000)
    _log_in(page, stack.base, "li.na", PASSWORD)
    expect(page.locator("#live.on")).to_be_visible()
    sme, core = code(1), code(2)
    # 16:30 UTC is 00:30 the next day in Beijing.
    occurred = (datetime.now(UTC) - timedelta(days=1)).replace(hour=16, minute=30, second=0)
    _publish(stack.redis_url, [MonitorEvent(
        "loan:kechuangtong:evidence-1", "loan", occurred, sme,
        {"platform": "kechuangtong", "event_type": "repayment_overdue",
         "loan_no": "kechuangtong-0", "bank_code": "BOCD", "amount_fen": 123_456_789,
         "days_overdue": 95, "core_enterprise_code": core},
    )])  # fmt: skip
    row = page.locator("tbody tr", has_text="Repayment 95 days overdue")
    expect(row).to_contain_text(NAMES[sme])
    row.locator("td.title a").click()
    evidence = page.locator("table.evidence")
    expect(evidence).to_contain_text("loan:kechuangtong:evidence-1")
    beijing = occurred.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
    for text in (
        "Amount ¥1,234,567.89",
        "Days overdue 95",
        "Loan number kechuangtong-0",
        f"Core enterprise {NAMES[core]} ({core})",
        "Repayment overdue",
        beijing,
    ):
        expect(evidence).to_contain_text(text)
    expect(page.locator("h1")).to_contain_text("Repayment 95 days overdue")
    expect(page.locator("#enterprise")).to_contain_text(NAMES[sme])
    for raw in ("amount_fen", "days_overdue", "loan_no", "123456789"):
        assert raw not in page.locator("main").inner_text()
    page.screenshot(path=str(ARTIFACTS / "evidence-en.png"), full_page=True)

    page.click("#lang-switch")
    expect(page.locator("h1")).to_contain_text("还款逾期 95 天")
    for text in (
        "金额 1,234,567.89 元",
        "逾期天数 95",
        "贷款编号 kechuangtong-0",
        f"核心企业 {NAMES[core]}（{core}）",
        "还款逾期",
        "科创通",
    ):
        expect(evidence).to_contain_text(text)
    page.screenshot(path=str(ARTIFACTS / "evidence-zh.png"), full_page=True)

    page.click("#loans-link")
    loans = page.locator("#loans")
    expect(page.locator("h1")).to_contain_text(NAMES[sme])
    expect(loans.locator("tr[data-loan='kechuangtong-0']")).to_contain_text("50.00 万元")
    expect(loans).to_contain_text("逾期")
    page.screenshot(path=str(ARTIFACTS / "enterprise-loans.png"), full_page=True)
