"""What an officer reads on an alert's evidence page and the enterprise's loans page:
every fact labelled in their language, money in yuan, Beijing time, enterprise
names beside codes, English pages in English; and a refused form as a page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select
from starlette.testclient import TestClient

from gateway.dashboard import facts
from gateway.dashboard.i18n import FIELD, alert_title
from gateway.monitor.service import load_rules
from gateway.monitor.worker import Monitor
from gateway.settings import Settings
from gateway.store.tables import alerts, audit_entries, enterprises, loans
from policies.risk.base import MonitorEvent
from testkit.builders import code
from tests.dashboard.test_login import client
from tests.dashboard.test_pages import logged_in

__all__ = ["client"]
SME, CORE = code(31), code(32)
NAMES = {SME: "成都锦程精密机械有限公司", CORE: "四川天府核心制造集团有限公司"}
# 16:30 UTC on the 26th is 00:30 on the 27th in Beijing.
OCCURRED = datetime(2026, 11, 26, 16, 30, tzinfo=UTC)
RAW_KEYS = ("amount_fen", "days_overdue", "loan_no", "core_enterprise_code", "event_type",
            "bank_code", "repayment_overdue")  # fmt: skip
HAN = re.compile(r"[\u4e00-\u9fff]")


def register(engine: Engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(enterprises), [
            {"credit_code": c, "name": name, "entity_type": "company", "division_code": "510104",
             "status": "active", "created_at": now, "updated_at": now}
            for c, name in NAMES.items()
        ])  # fmt: skip


def overdue_alert(engine: Engine) -> str:
    event = MonitorEvent(
        "loan:kechuangtong:ev-31", "loan", OCCURRED, SME,
        {"platform": "kechuangtong", "event_type": "repayment_overdue", "loan_no": "KCT-31",
         "bank_code": "BOCD", "amount_fen": 123_456_789, "days_overdue": 95,
         "core_enterprise_code": CORE},
    )  # fmt: skip
    [alert_id] = Monitor(engine, load_rules(Settings().config_dir)).apply(event)
    return alert_id


def texts(html: str, *tags: str) -> list[str]:
    """The text inside each of these elements (tags inside them dropped), enterprise
    names left out: they are shown as registered, in Chinese."""
    found = []
    for tag in tags:
        for inner in re.findall(rf"<{tag}\b[^>]*>(.*?)</{tag}>", html, re.S):
            text = re.sub(r"<[^>]+>", "", inner)
            for name in NAMES.values():
                text = text.replace(name, "")
            found.append(text)
    return found


def test_the_evidence_page_labels_every_fact_in_yuan_beijing_time_and_names(
    client: TestClient, engine: Engine
) -> None:
    register(engine)
    alert_id = overdue_alert(engine)
    logged_in(client, engine)
    zh = client.get(f"/dashboard/alerts/{alert_id}").text
    en = client.get(f"/dashboard/alerts/{alert_id}?lang=en").text
    for page in (zh, en):
        assert not [key for key in RAW_KEYS if key in page], "a raw key or code is shown"
        assert "123456789" not in page  # never fen
        assert "2026-11-27 00:30" in page  # Beijing time
        assert f"{NAMES[SME]}{'（' if page is zh else ' ('}{SME}" in page  # the event's SME
        assert f"{NAMES[CORE]}{'（' if page is zh else ' ('}{CORE}" in page  # its core enterprise
        assert f'href="/dashboard/enterprises/{SME}/loans' in page
    assert "1,234,567.89 元" in zh
    assert "¥1,234,567.89" in en
    for label in ("金额", "逾期天数", "贷款编号", "核心企业", "还款逾期", "科创通"):
        assert label in zh
    for label in ("Amount", "Days overdue", "Loan number", "Core enterprise", "Kechuangtong"):
        assert label in en
    # English mode: every title, heading, label and button in English (enterprise
    # names are names, shown as registered).
    assert "Repayment 95 days overdue" in texts(en, "h1")[0]
    words = texts(en, "title", "h1", "h2", "th", "dt", "button", "label", "strong")
    assert words and not [w for w in words if HAN.search(w)]
    assert "还款逾期 95 天" in texts(zh, "h1")[0]


def test_the_list_shows_names_beside_codes_and_english_titles(
    client: TestClient, engine: Engine
) -> None:
    register(engine)
    overdue_alert(engine)
    logged_in(client, engine)
    en = client.get("/dashboard?lang=en").text
    assert "Repayment 95 days overdue" in en
    assert f'<span class="ename">{NAMES[SME]}</span>' in en
    assert not [w for w in texts(en, "title", "h1", "h2", "th", "button") if HAN.search(w)]


def test_the_loans_page_lists_the_ledger_in_yuan_and_is_audited_once(
    client: TestClient, engine: Engine
) -> None:
    register(engine)
    with engine.begin() as conn:
        conn.execute(insert(loans), [
            {"platform": "nongdaitong", "loan_no": f"NDT-{n}", "credit_code": SME,
             "bank_code": "BOCD", "status": status, "amount_fen": 50_000_000 * (n + 1),
             "outstanding_fen": 12_345_600, "days_overdue": 35 * n, "core_enterprise_code": CORE,
             "first_event_at": OCCURRED, "last_event_at": OCCURRED, "updated_at": OCCURRED}
            for n, status in enumerate(("disbursed", "overdue"))
        ])  # fmt: skip
    logged_in(client, engine)
    route = "GET /dashboard/enterprises/{credit_code}/loans"

    def entries() -> list[tuple[str, str | None, str]]:
        with engine.connect() as conn:
            a = audit_entries.c
            query = select(a.client_id, a.credit_code, a.decision).where(a.route == route)
            return [(r.client_id, r.credit_code, r.decision) for r in conn.execute(query)]

    zh = client.get(f"/dashboard/enterprises/{SME}/loans")
    assert zh.status_code == 200
    assert entries() == [("user:wang.fang", SME, "allow")]  # exactly one
    assert NAMES[SME] in zh.text and "NDT-0" in zh.text and "NDT-1" in zh.text
    assert "50.00 万元" in zh.text and "100.00 万元" in zh.text  # 500,000 and 1,000,000 yuan
    assert "123,456.00 元" in zh.text and "已放款" in zh.text and "逾期" in zh.text
    en = client.get(f"/dashboard/enterprises/{SME}/loans?lang=en").text
    assert "¥500,000.00" in en and "Disbursed" in en and "Outstanding" in en
    assert "2026-11-27 00:30" in en
    assert not [w for w in texts(en, "title", "h1", "h2", "th", "button") if HAN.search(w)]
    assert len(entries()) == 2
    bad = client.get("/dashboard/enterprises/91510104MA00000000/loans")
    assert bad.status_code == 422
    client.cookies.clear()
    assert (
        client.get(f"/dashboard/enterprises/{SME}/loans", follow_redirects=False).status_code == 303
    )
    assert len(entries()) == 2  # nothing read, nothing audited


def test_a_form_refused_for_its_csrf_token_is_a_page_for_a_browser_json_for_a_program(
    client: TestClient, engine: Engine
) -> None:
    register(engine)
    alert_id = overdue_alert(engine)
    csrf = logged_in(client, engine)
    url = f"/dashboard/alerts/{alert_id}/acknowledge"
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for lang, words in (("en", "CSRF token"), ("zh", "CSRF 令牌")):
        for token in ({}, {"csrf": "forged"}):
            page = client.post(f"{url}?lang={lang}", data={**token, "note": "x"}, headers=browser,
                               follow_redirects=False)  # fmt: skip
            assert page.status_code == 403
            assert page.headers["content-type"].startswith("text/html")
            assert words in page.text
            back = f"/dashboard/alerts/{alert_id}" + ("?lang=en" if lang == "en" else "")
            assert f'<a id="back" href="{back}">' in page.text
            assert page.headers["content-security-policy"].startswith("default-src 'self'")
    program = client.post(url, data={"note": "x"}, headers={"Accept": "application/json"})
    assert program.status_code == 403
    assert program.headers["content-type"] == "application/problem+json"
    assert program.json()["type"].endswith("csrf-token-invalid")
    # An empty note from a browser is a page too; nothing was changed by any of these.
    empty = client.post(url, data={"csrf": csrf, "note": " "}, headers=browser)
    assert empty.status_code == 422 and "备注必须填写" in empty.text
    with engine.connect() as conn:
        assert conn.execute(select(alerts.c.state)).scalar() == "open"
        assert conn.execute(select(func.count()).select_from(alerts)).scalar() == 1


def test_a_login_form_without_its_token_is_a_page_in_the_browser_language(
    client: TestClient,
) -> None:
    page = client.post("/dashboard/login?lang=en", data={"name": "a", "password": "b"},
                       headers={"Accept": "text/html"})  # fmt: skip
    assert page.status_code == 403
    assert "missing or wrong CSRF token" in page.text
    assert '<a id="back" href="/dashboard/login?lang=en">' in page.text


def test_every_field_has_a_label_in_both_languages() -> None:
    assert FIELD["zh"].keys() == FIELD["en"].keys()
    # Record fields outside the table take the catalogue's Chinese name.
    assert facts.field_label("decision_number", "zh") == "行政处罚决定书文号"
    assert facts.field_label("decision_number", "en") == "Decision number"
    assert facts.yuan(1_234_567_89, "zh") == "1,234,567.89 元"
    assert facts.yuan(5_000_000_00, "zh") == "500.00 万元"
    assert facts.yuan(-1_50, "en") == "-¥1.50"
    assert facts.rows({"legal_rep_hash": "ab", "x_masked": "张*"}, "zh", {}) == []
    for title, english in (
        ("还款逾期 30 天", "Repayment 30 days overdue"),
        ("贷款违约", "Loan defaulted"),
        ("7天内在3个平台申请贷款", "Loan applications on 3 platforms within 7 days"),
        ("平台30天逾期率 25%", "Platform overdue ratio 25% over 30 days"),
        ("贷后纳税信用等级降为 D", "Tax credit rating fell to D after lending"),
        (
            "核心企业的4家供应商在30天内逾期",
            "4 suppliers of a core enterprise overdue within 30 days",
        ),
    ):
        assert alert_title(title, "any", "en") == english
    assert alert_title("新写法", "query_abuse", "en") == "Query abuse"
