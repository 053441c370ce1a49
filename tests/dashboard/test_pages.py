"""The dashboard's pages over HTTP: the list, filters, an alert's evidence page,
working an alert by form (CSRF, roles, notes, races), the stream's door, the
static files, and the chart figures, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select, update
from starlette.testclient import TestClient

from gateway.alerts.service import apply_finding
from gateway.dashboard import repository
from gateway.dashboard.router import SESSION_COOKIE
from gateway.monitor.worker import Monitor
from gateway.store.tables import alert_history, alerts, loans
from policies.risk.base import Finding, MonitorEvent
from testkit.builders import code
from tests.dashboard.test_login import PASSWORD, client, login, make_user, page_csrf

__all__ = ["client"]
NOW = datetime.now(UTC)


def raise_alert(engine: Engine, n: int, severity: str = "high", rule: str = "overdue_default",
                title: str = "还款逾期 65 天", seen: datetime = NOW) -> str:  # fmt: skip
    finding = Finding(rule=rule, severity=severity, subject=f"loan:kechuangtong:L{n}",  # type: ignore[arg-type]
                      title=title, evidence=(f"loan:kechuangtong:m{n}",), credit_code=code(n),
                      details={"loan_no": f"L{n}"})  # fmt: skip
    with engine.begin() as conn:
        return apply_finding(conn, finding, seen)[0]


def logged_in(client: TestClient, engine: Engine, role: str = "risk_officer") -> str:
    make_user(engine, role=role)
    assert login(client, "wang.fang", PASSWORD).status_code == 303
    return page_csrf(client)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)"', html)


def test_the_list_shows_open_alerts_worst_first_and_filters(
    client: TestClient, engine: Engine
) -> None:
    low = raise_alert(engine, 1, "low")
    critical = raise_alert(engine, 2, "critical", seen=NOW - timedelta(days=1))
    high_new = raise_alert(engine, 3, "high")
    high_old = raise_alert(engine, 4, "high", seen=NOW - timedelta(hours=5))
    logged_in(client, engine)
    page = client.get("/dashboard")
    assert rows(page.text) == [critical, high_new, high_old, low]
    assert "未处理告警" in page.text  # Chinese by default
    assert re.search(r'data-count="critical">1<', page.text)
    assert re.search(r'data-count="high">2<', page.text)

    assert rows(client.get("/dashboard?severity=high").text) == [high_new, high_old]
    assert rows(client.get(f"/dashboard?credit_code={code(4)}").text) == [high_old]
    assert rows(client.get("/dashboard?status=resolved").text) == []
    assert "No alert matches." in client.get("/dashboard?status=resolved&lang=en").text
    # Nonsense filters widen to "any" instead of failing the page.
    assert len(rows(client.get("/dashboard?severity=<x>&status=zzz&rule=a;b").text)) == 4
    assert client.get("/dashboard?credit_code=" + "9" * 41).status_code == 422


def test_titles_and_evidence_are_escaped(client: TestClient, engine: Engine) -> None:
    alert_id = raise_alert(engine, 5, title='<script>alert("x")</script>')
    logged_in(client, engine)
    for page in (client.get("/dashboard"), client.get(f"/dashboard/alerts/{alert_id}")):
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page.text


def test_the_evidence_page_shows_the_events_and_history(client: TestClient, engine: Engine) -> None:
    event = MonitorEvent(
        "loan:kechuangtong:ev-1", "loan", NOW, code(9),
        {"platform": "kechuangtong", "event_type": "repayment_overdue", "loan_no": "KCT-9",
         "days_overdue": 95},
    )  # fmt: skip
    from gateway.monitor.service import load_rules
    from gateway.settings import Settings

    [alert_id] = Monitor(engine, load_rules(Settings().config_dir)).apply(event)
    logged_in(client, engine)
    page = client.get(f"/dashboard/alerts/{alert_id}?lang=en")
    assert page.status_code == 200
    assert "loan:kechuangtong:ev-1" in page.text
    assert "Repayment overdue" in page.text
    assert "Raised" in page.text
    assert 'id="acknowledge"' in page.text
    assert client.get("/dashboard/alerts/alr_nope").status_code == 404
    missing = client.get("/dashboard/alerts/not-an-alert")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_an_officer_acknowledges_then_resolves_by_form(client: TestClient, engine: Engine) -> None:
    alert_id = raise_alert(engine, 6)
    csrf = logged_in(client, engine)
    url = f"/dashboard/alerts/{alert_id}"
    done = client.post(url + "/acknowledge", data={"csrf": csrf, "note": "called the bank"},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    assert done.headers["location"] == url
    again = client.post(url + "/acknowledge", data={"csrf": csrf, "note": "twice"},
                        follow_redirects=False)  # fmt: skip
    assert again.status_code == 303
    assert again.headers["location"] == url + "?msg=stale"
    assert "Someone else worked" in client.get(url + "?msg=stale&lang=en").text
    resolved = client.post(url + "/resolve", data={"csrf": csrf, "note": "repaid in full"},
                           follow_redirects=False)  # fmt: skip
    assert resolved.status_code == 303
    with engine.connect() as conn:
        state = conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id)).scalar()
        history = conn.execute(
            select(alert_history.c.actor, alert_history.c.action, alert_history.c.note)
            .where(alert_history.c.alert_id == alert_id)
            .order_by(alert_history.c.id)
        ).all()
    assert state == "resolved"
    assert [tuple(h) for h in history[1:]] == [
        ("user:wang.fang", "acknowledged", "called the bank"),
        ("user:wang.fang", "resolved", "repaid in full"),
    ]
    assert 'id="resolve"' not in client.get(url).text


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"csrf": "forged", "note": "x"}, 403),
        ({"note": "x"}, 403),
        ({"csrf": None, "note": "   "}, 422),
        ({"csrf": None, "note": "x" * 2001}, 422),
    ],
)
def test_a_bad_form_changes_nothing(
    client: TestClient, engine: Engine, form: dict[str, str | None], status: int
) -> None:
    alert_id = raise_alert(engine, 7)
    csrf = logged_in(client, engine)
    data = {k: (csrf if v is None else v) for k, v in form.items()}
    answer = client.post(f"/dashboard/alerts/{alert_id}/acknowledge", data=data,
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    with engine.connect() as conn:
        assert conn.execute(select(alerts.c.state)).scalar() == "open"


def test_an_auditor_reads_but_cannot_work(client: TestClient, engine: Engine) -> None:
    alert_id = raise_alert(engine, 8)
    csrf = logged_in(client, engine, role="auditor")
    page = client.get(f"/dashboard/alerts/{alert_id}?lang=en")
    assert "read-only" in page.text
    assert "<textarea" not in page.text
    refused = client.post(f"/dashboard/alerts/{alert_id}/resolve",
                          data={"csrf": csrf, "note": "x"}, follow_redirects=False)  # fmt: skip
    assert refused.status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(alerts.c.state)).scalar() == "open"


def test_without_a_session_pages_redirect_and_the_stream_refuses(
    client: TestClient, engine: Engine
) -> None:
    alert_id = raise_alert(engine, 9)
    assert (
        client.get("/dashboard/alerts/" + alert_id, follow_redirects=False).headers["location"]
        == "/dashboard/login"
    )
    posted = client.post(f"/dashboard/alerts/{alert_id}/resolve", data={"note": "x"},
                         follow_redirects=False)  # fmt: skip
    assert posted.status_code == 303
    client.cookies.set(SESSION_COOKIE, "stolen-or-expired", path="/dashboard")
    stream = client.get("/dashboard/stream")
    assert stream.status_code == 401
    assert stream.headers["content-type"] == "application/problem+json"
    assert client.post(f"/dashboard/alerts/{alert_id}/close", data={}).status_code == 404
    with engine.connect() as conn:
        assert conn.execute(select(alerts.c.state)).scalar() == "open"


def test_an_expired_session_is_logged_out(client: TestClient, engine: Engine) -> None:
    logged_in(client, engine)
    from gateway.store.tables import dashboard_sessions

    with engine.begin() as conn:
        conn.execute(update(dashboard_sessions).values(last_seen_at=NOW - timedelta(hours=9)))
    answer = client.get("/dashboard", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/login"


def test_static_files_are_served_with_validators(client: TestClient) -> None:
    script = client.get("/dashboard/static/dashboard.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    etag = script.headers["etag"]
    assert client.get("/dashboard/static/dashboard.js",
                      headers={"If-None-Match": etag}).status_code == 304  # fmt: skip
    for name in ("charts.js", "dashboard.css"):
        assert client.get(f"/dashboard/static/{name}").status_code == 200
    for name in ("../router.py", "router.py", "nope.js"):
        assert client.get(f"/dashboard/static/{name}").status_code == 404


def test_alerts_per_day_count_by_chengdu_day(engine: Engine) -> None:
    # 16:30 UTC is already the next day in Chengdu.
    raise_alert(engine, 10, seen=datetime(2026, 11, 26, 16, 30, tzinfo=UTC))
    raise_alert(engine, 11, seen=datetime(2026, 11, 26, 15, 30, tzinfo=UTC))
    raise_alert(engine, 12, rule="multi_lending", seen=datetime(2026, 11, 27, 1, 0, tzinfo=UTC))
    with engine.connect() as conn:
        days, series = repository.alerts_per_day(conn, date(2026, 11, 27), days=3)
    assert days == ["2026-11-25", "2026-11-26", "2026-11-27"]
    assert series == {"multi_lending": [0, 0, 1], "overdue_default": [0, 1, 1]}


def test_platform_figures_count_lent_and_late_loans(engine: Engine) -> None:
    statuses = ["applied", "disbursed", "overdue", "defaulted", "settled", "rejected"]
    with engine.begin() as conn:
        for n, status in enumerate(statuses):
            conn.execute(insert(loans).values(
                platform="nongdaitong", loan_no=f"N{n}", credit_code=code(n), status=status,
                amount_fen=1_000_000 * (n + 1), outstanding_fen=0, days_overdue=0,
                first_event_at=NOW, last_event_at=NOW, updated_at=NOW,
            ))  # fmt: skip
    with engine.connect() as conn:
        [figures] = repository.platform_figures(conn)
    assert (figures.loans, figures.volume_fen, figures.live, figures.late) == (4, 14_000_000, 3, 2)
    assert figures.overdue_ratio == pytest.approx(2 / 3)


def test_filters_decide_what_the_stream_keeps() -> None:
    alert = {"status": "acknowledged", "severity": "high", "rule": "query_abuse",
             "credit_code": None}  # fmt: skip
    assert not repository.filters_of("open", "", "", "").matches(alert)
    assert repository.filters_of("active", "high", "query_abuse", "").matches(alert)
    assert not repository.filters_of("all", "critical", "", "").matches(alert)
    assert repository.filters_of("bogus", "bogus", "", "").status == "open"


def test_the_list_filters_by_status_the_name_the_api_uses(
    client: TestClient, engine: Engine
) -> None:
    open_one, done = raise_alert(engine, 13), raise_alert(engine, 14)
    csrf = logged_in(client, engine)
    client.post(f"/dashboard/alerts/{done}/resolve", data={"csrf": csrf, "note": "repaid"})
    assert rows(client.get("/dashboard?status=resolved").text) == [done]
    page = client.get("/dashboard?status=all&lang=en")
    assert sorted(rows(page.text)) == sorted([open_one, done])
    assert '<select name="status">' in page.text
    assert "data-state" not in page.text
    assert re.search(rf'data-id="{done}"[^>]* data-status="resolved"', page.text)
