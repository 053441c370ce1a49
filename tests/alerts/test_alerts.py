"""Alerts: deduplicated per rule and subject, worked by officers, streamed live."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import httpx
import orjson
from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.alerts.service import apply_finding, get
from gateway.app import create_app
from gateway.client import ASSERTION_TYPE, client_assertion
from gateway.settings import Settings
from policies.risk.base import Finding
from testkit.builders import code
from testkit.clients import ClientKey, register
from testkit.live import serve
from tests.identity.test_token_flow import get_token

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def finding(severity: str = "medium", evidence: tuple[str, ...] = ("loan:kct:1",)) -> Finding:
    return Finding(
        rule="overdue_default",
        severity=severity,  # type: ignore[arg-type]
        subject="loan:kechuangtong:KCT-1",
        title="还款逾期 30 天",
        evidence=evidence,
        credit_code=code(1),
        details={"days_overdue": 30},
    )


def raise_alert(engine: Engine, *args: object, **kwargs: object) -> tuple[str, bool]:
    with engine.begin() as conn:
        return apply_finding(conn, finding(*args, **kwargs), NOW)  # type: ignore[arg-type]


def test_one_unresolved_alert_per_rule_and_subject(engine: Engine) -> None:
    first, created = raise_alert(engine)
    assert created
    again, created = raise_alert(engine, "critical", ("loan:kct:2",))
    assert (again, created) == (first, False)
    with engine.connect() as conn:
        alert = get(conn, first)
    assert alert["severity"] == "critical"  # the worse one wins
    assert alert["evidence"] == ["loan:kct:1", "loan:kct:2"]
    assert [h["action"] for h in alert["history"]] == ["raised", "updated"]
    milder, _ = raise_alert(engine, "low")
    with engine.connect() as conn:
        assert get(conn, milder)["severity"] == "critical"  # never downgraded silently


def officer(app_client: TestClient, engine: Engine) -> dict[str, str]:
    office = register(engine, "risk-office", client_type="risk_office", org_code="SANDBOX")
    return {"Authorization": f"Bearer {get_token(app_client, office)}"}


def test_list_get_acknowledge_resolve(
    app_client: TestClient, bank: ClientKey, engine: Engine
) -> None:
    alert_id, _ = raise_alert(engine)
    auth = officer(app_client, engine)
    listed = app_client.get("/v1/alerts", params={"status": "open"}, headers=auth)
    assert listed.status_code == 200, listed.text
    assert [a["id"] for a in listed.json()["items"]] == [alert_id]
    assert (
        app_client.get("/v1/alerts", params={"status": "resolved"}, headers=auth).json()["items"]
        == []
    )
    one = app_client.get(f"/v1/alerts/{alert_id}", headers=auth).json()
    assert one["history"][0]["action"] == "raised"
    ack = app_client.post(
        f"/v1/alerts/{alert_id}/acknowledge", json={"note": "已联系银行核实"}, headers=auth
    )
    assert ack.status_code == 200
    assert ack.json()["status"] == "acknowledged"
    assert ack.json()["history"][-1] == {
        **ack.json()["history"][-1], "actor": "risk-office", "action": "acknowledged",
        "note": "已联系银行核实",
    }  # fmt: skip
    again = app_client.post(f"/v1/alerts/{alert_id}/acknowledge", json={"note": "x"}, headers=auth)
    assert again.status_code == 409
    done = app_client.post(f"/v1/alerts/{alert_id}/resolve", json={"note": "已还款"}, headers=auth)
    assert done.json()["status"] == "resolved"
    # Resolved: the same rule and subject raise a new alert next time.
    fresh, created = raise_alert(engine)
    assert created
    assert fresh != alert_id
    banker = {"Authorization": f"Bearer {get_token(app_client, bank)}"}
    assert app_client.get("/v1/alerts", headers=banker).status_code == 403
    assert app_client.get("/v1/alerts/alr_nope", headers=auth).status_code == 404
    for bad in ({"note": ""}, {"note": 5}, {}, {"note": "x", "more": 1}):
        answer = app_client.post(f"/v1/alerts/{fresh}/acknowledge", json=bad, headers=auth)
        assert answer.status_code == 422, bad
    for params in ({"status": "lost"}, {"severity": "huge"}, {"cursor": "x"}, {"limit": 0}):
        assert app_client.get("/v1/alerts", params=params, headers=auth).status_code == 422


def test_every_answer_names_the_status_as_the_spec_does_never_state(
    app_client: TestClient, engine: Engine
) -> None:
    alert_id, _ = raise_alert(engine)
    auth = officer(app_client, engine)
    listed = app_client.get("/v1/alerts", params={"status": "open"}, headers=auth).json()
    one = app_client.get(f"/v1/alerts/{alert_id}", headers=auth).json()
    ack = app_client.post(f"/v1/alerts/{alert_id}/acknowledge", json={"note": "n"}, headers=auth)
    done = app_client.post(f"/v1/alerts/{alert_id}/resolve", json={"note": "n"}, headers=auth)
    bodies = [listed["items"][0], one, ack.json(), done.json()]
    assert [b["status"] for b in bodies] == ["open", "open", "acknowledged", "resolved"]
    assert all("state" not in b for b in bodies)
    schemas = app_client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("Alert", "AlertDetail"):
        assert "status" in schemas[name]["properties"]
        assert "state" not in schemas[name]["properties"]
        assert "status" in schemas[name]["required"]


def test_pages_newest_change_first(app_client: TestClient, engine: Engine) -> None:
    ids = []
    for n in range(5):
        with engine.begin() as conn:
            f = Finding("platform_stress", "high", f"platform:p{n}", "逾期率过高", (f"e{n}",))
            ids.append(apply_finding(conn, f, NOW)[0])
    auth = officer(app_client, engine)
    first = app_client.get("/v1/alerts", params={"limit": 3}, headers=auth).json()
    rest = app_client.get(
        "/v1/alerts", params={"limit": 3, "cursor": first["next_cursor"]}, headers=auth
    ).json()
    seen = [a["id"] for a in first["items"] + rest["items"]]
    assert seen == list(reversed(ids))
    assert rest["next_cursor"] is None


def test_the_stream_sends_a_new_alert_live(id_settings: Settings, engine: Engine) -> None:
    office = register(engine, "risk-office", client_type="risk_office", org_code="SANDBOX")
    with serve(create_app(id_settings)) as base:
        token = httpx.post(
            base + "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(
                    office.client_id, office.key, audience="http://testserver", kid=office.kid
                ),
            },
        )
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        received: list[dict[str, object]] = []
        with httpx.stream("GET", base + "/v1/alerts/stream", headers=auth, timeout=20) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            threading.Timer(0.3, lambda: raise_alert(engine)).start()
            for line in lines:
                if line.startswith("data: "):
                    received.append(orjson.loads(line[6:]))
                    break
    assert received[0]["rule"] == "overdue_default"
    assert received[0]["status"] == "open"
    assert "state" not in received[0]
