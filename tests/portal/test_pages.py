"""The portal's record pages over real HTTP with a logged-in session: access
history, my report (self_query: free, audited once), disputes and credit repair;
another enterprise's ids are 404, a form without its CSRF token is 403, an HTML
file named .pdf and an oversize upload are refused with a page saying why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from gateway.audit.today import admitted_reports
from gateway.dashboard import accounts
from gateway.portal import history
from gateway.reports.router import ROUTE as REPORT_ROUTE
from gateway.store.tables import audit_entries, record_disputes, records, repair_applications
from policies.rate import DAY_S, SHANGHAI_OFFSET_S
from testkit.builders import MARKET, code
from tests.portal.conftest import A_REP, B_REP, Live, hidden, log_in
from tests.repairs.test_evidence import HTML_BYTES, PDF_BYTES
from tests.reports.test_reports_api import ingest, recent_penalty

REVIEWER_PASSWORD = "reviewer password 1"


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).date().isoformat()


def record_id(engine: Engine, source_record_id: str) -> int:
    with engine.connect() as conn:
        query = select(records.c.id).where(records.c.source_record_id == source_record_id)
        return int(conn.execute(query).scalar_one())


@pytest.fixture
def penalties(live: Live) -> dict[str, int]:
    """Code 1 (the logged-in person's): one repairable penalty, one too recent;
    code 2: one of its own."""
    ingest(live.engine, "penalty", recent_penalty(1, decision_date=_days_ago(120)))
    ingest(live.engine, "penalty", recent_penalty(2, decision_date=_days_ago(20)))
    ingest(live.engine, "penalty", recent_penalty(3, credit_code=code(2)))
    return {name: record_id(live.engine, f"P-NEW-{n}")
            for n, name in ((1, "eligible"), (2, "early"), (3, "other"))}  # fmt: skip


@pytest.fixture
def browser(live: Live) -> Iterator[httpx.Client]:
    with live.browser() as client:
        assert log_in(live, client, A_REP).status_code == 303
        yield client


def csrf_of(page: str) -> str:
    return hidden(page)["csrf"]


def audit_rows(engine: Engine, route: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(audit_entries).where(audit_entries.c.route == route)))


def test_pages_need_a_login(live: Live) -> None:
    with live.browser() as anonymous:
        for path in ("/portal/access-history", "/portal/report", "/portal/report.json",
                     "/portal/disputes", "/portal/repairs"):  # fmt: skip
            answer = anonymous.get(path)
            assert answer.status_code == 303 and "/portal/login" in answer.headers["location"]


def test_my_report_is_free_and_audited_once(
    live: Live, browser: httpx.Client, penalties: dict[str, int]
) -> None:
    shown = browser.get("/portal/report")
    assert shown.status_code == 200
    assert f'id="record-{penalties["eligible"]}"' in shown.text
    assert f"/portal/disputes/new?record_id={penalties['eligible']}" in shown.text
    assert f'id="record-{penalties["other"]}"' not in shown.text
    assert "script" not in shown.text.lower()
    assert shown.headers["content-security-policy"].startswith("default-src 'self'")
    english = browser.get("/portal/report", params={"lang": "en"})
    assert "My credit report" in english.text and "Own report" not in shown.text

    signed = browser.get("/portal/report.json")
    assert signed.status_code == 200, signed.text
    assert signed.headers["content-disposition"].startswith("attachment;")
    report = signed.json()
    assert (report["purpose"], report["consent_id"]) == ("self_query", None)
    assert report["recipient"] == {"client_id": "portal", "org_code": code(1)}
    assert report["credit_code"] == code(1) and report["signature"].count(".") == 2
    assert "penalties" in report["sections"] and not report["sections_not_consented"]

    printable = browser.get("/portal/report/print")
    assert printable.status_code == 200 and "本企业自查" in printable.text
    assert printable.headers["content-security-policy"].startswith("default-src 'none'")

    entries = audit_rows(live.engine, "GET /portal/report.json")
    assert [(e.client_id, e.purpose, e.decision, e.credit_code) for e in entries] == [
        ("portal", "self_query", "allow", code(1))
    ]
    assert len(audit_rows(live.engine, "GET /portal/report/print")) == 1
    # Counted against no bank: the daily counts rebuilt from the trail see nothing.
    day = int((datetime.now(UTC).timestamp() + SHANGHAI_OFFSET_S) // DAY_S)
    with live.engine.connect() as conn:
        assert admitted_reports(conn, day, {f"GET {REPORT_ROUTE}": 1}) == {}


def test_access_history_is_paged_by_cursor(
    live: Live, browser: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        assert browser.get("/portal/report").status_code == 200
    monkeypatch.setattr(history, "PAGE_SIZE", 2)
    first = browser.get("/portal/access-history")
    assert first.status_code == 200
    assert first.text.count("本企业自查") == 2 and "本企业（门户）" in first.text
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert older is not None
    second = browser.get(older.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and second.text.count("本企业自查") >= 1
    english = browser.get("/portal/access-history", params={"lang": "en"})
    assert "Access history" in english.text and "Own report" in english.text
    bad = browser.get("/portal/access-history", params={"cursor": "x1"})
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]


def test_a_dispute_on_a_record_of_my_report(
    live: Live, browser: httpx.Client, penalties: dict[str, int]
) -> None:
    mine = penalties["eligible"]
    form = browser.get("/portal/disputes/new", params={"record_id": mine})
    assert form.status_code == 200
    fields = hidden(form.text)
    no_csrf = browser.post("/portal/disputes", data={"record_id": str(mine), "reason": "x"})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    empty = browser.post("/portal/disputes", data={**fields, "reason": "  "})
    assert empty.status_code == 422
    done = browser.post("/portal/disputes", data={**fields, "reason": "罚款已于当日缴清"})
    assert done.status_code == 303, done.text
    listed = browser.get(done.headers["location"])
    assert "罚款已于当日缴清" in listed.text and "异议处理中" in listed.text
    again = browser.post("/portal/disputes", data={**fields, "reason": "再次"})
    assert again.status_code == 409
    with live.engine.connect() as conn:
        row = conn.execute(select(record_disputes)).one()
    assert row.opened_by.startswith("portal:") and len(row.opened_by) == len("portal:") + 48
    assert A_REP not in row.opened_by
    assert "异议处理中" in browser.get("/portal/report").text

    other = penalties["other"]  # another enterprise's record: unknown here
    assert browser.get("/portal/disputes/new", params={"record_id": other}).status_code == 404
    refused = browser.post(
        "/portal/disputes", data={**fields, "record_id": str(other), "reason": "不是我的"}
    )
    assert refused.status_code == 404


def multipart(fields: dict[str, str], *files: tuple[str, bytes]) -> dict[str, Any]:
    return {
        "data": fields,
        "files": [("evidence", (name, data, "application/pdf")) for name, data in files],
    }


def test_credit_repair_apply_follow_and_the_decision(
    live: Live, browser: httpx.Client, penalties: dict[str, int]
) -> None:
    overview = browser.get("/portal/repairs")
    assert overview.status_code == 200
    assert f"/portal/repairs/apply?record_id={penalties['eligible']}" in overview.text
    early = re.search(rf'id="penalty-{penalties["early"]}".*?</tr>', overview.text)
    assert early is not None and "起可以申请信用修复" in early.group(0)
    assert f'id="penalty-{penalties["other"]}"' not in overview.text
    refused = browser.get("/portal/repairs/apply", params={"record_id": penalties["early"]})
    assert refused.status_code == 422 and "最短公示期未满" in refused.text
    theirs = browser.get("/portal/repairs/apply", params={"record_id": penalties["other"]})
    assert theirs.status_code == 404

    form = browser.get("/portal/repairs/apply", params={"record_id": penalties["eligible"]})
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text and "违背上述承诺" in form.text
    fields = {**hidden(form.text)}
    accept = re.search(r'name="accept" value="([0-9a-f]{64})"', form.text)
    assert accept is not None
    fields["statement"] = "罚款已缴清，违法行为已整改"
    no_csrf = browser.post(
        "/portal/repairs/apply",
        **multipart({**fields, "csrf": "", "accept": accept.group(1)}, ("a.pdf", PDF_BYTES)),
    )
    assert no_csrf.status_code == 403
    html = browser.post(
        "/portal/repairs/apply",
        **multipart({**fields, "accept": accept.group(1)}, ("缴款凭证.pdf", HTML_BYTES)),
    )
    assert html.status_code == 415 and "text/html" in html.headers["content-type"]
    assert "not a PDF, JPEG or PNG" in html.text
    big = browser.post(
        "/portal/repairs/apply",
        **multipart(
            {**fields, "accept": accept.group(1)},
            ("big.pdf", b"%PDF-1.7\n" + b"0" * (5 * 1024 * 1024)),
        ),
    )
    assert big.status_code == 413 and "text/html" in big.headers["content-type"]
    huge = browser.post(
        "/portal/repairs/apply",
        **multipart(fields, *[(f"{n}.pdf", b"0" * (2 * 1024 * 1024)) for n in range(4)]),
    )
    assert huge.status_code == 413
    unaccepted = browser.post("/portal/repairs/apply", **multipart(fields, ("a.pdf", PDF_BYTES)))
    assert unaccepted.status_code == 422 and "信用承诺" in unaccepted.text

    filed = browser.post(
        "/portal/repairs/apply",
        **multipart({**fields, "accept": accept.group(1)}, ("缴款凭证.pdf", PDF_BYTES)),
    )
    assert filed.status_code == 303, filed.text
    page = browser.get(filed.headers["location"])
    assert 'data-status="pending"' in page.text and "缴款凭证.pdf" in page.text
    application_id = filed.headers["location"].split("/")[-1].split("?")[0]
    with live.engine.connect() as conn:
        row = conn.execute(
            select(repair_applications).where(repair_applications.c.id == application_id)
        ).one()
    assert (row.channel, row.applied_by[:7]) == ("portal", "portal:")
    assert "pending_review" not in page.text

    with live.browser() as other:  # another enterprise's person
        assert log_in(live, other, B_REP).status_code == 303
        assert other.get(f"/portal/repairs/{application_id}").status_code == 404

    with live.engine.begin() as conn:
        accounts.create_user(conn, "li.market", accounts.REVIEWER, REVIEWER_PASSWORD,
                             department=MARKET)  # fmt: skip
    with live.browser() as reviewer:
        login = reviewer.get("/dashboard/login")
        signed_in = reviewer.post(
            "/dashboard/login",
            data={"name": "li.market", "password": REVIEWER_PASSWORD, "csrf": csrf_of(login.text)},
        )
        assert signed_in.status_code == 303
        review = reviewer.get(f"/dashboard/repairs/{application_id}")
        decided = reviewer.post(
            f"/dashboard/repairs/{application_id}/decision",
            data={"decision": "reject", "reason": "缴款凭证不清晰", "csrf": csrf_of(review.text)},
        )
        assert decided.status_code == 303, decided.text
    after = browser.get(f"/portal/repairs/{application_id}")
    assert 'data-status="rejected"' in after.text and "缴款凭证不清晰" in after.text
