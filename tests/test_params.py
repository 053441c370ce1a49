"""JSON routes refuse any other media type with 415, the same way on every route."""

from __future__ import annotations

import pytest
from fastapi import params
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.params import JsonOnly
from gateway.settings import Settings
from tests.security import kit

# Each JSON POST route, and who may call it.
ROUTES = [
    ("/v1/consents", "bank"),
    ("/v1/consents/cns_x/revoke", "bank"),
    ("/v1/alerts/alr_x/acknowledge", "risk_office"),
    ("/v1/alerts/alr_x/resolve", "risk_office"),
    ("/v1/records/penalty/1/disputes", "platform"),
    ("/v1/records/penalty/1/disputes/dsp_x/resolve", "department"),
]
NOT_JSON = [
    ({"Content-Type": "application/x-www-form-urlencoded"}, b"note=x&reason=y"),
    ({"Content-Type": "multipart/form-data; boundary=b"}, b"--b--\r\n"),
    ({"Content-Type": "text/plain"}, b'{"note": "x"}'),
    ({"Content-Type": "application/xml"}, b"<note>x</note>"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, b""),
]


@pytest.fixture
def callers(app_client: TestClient, engine: Engine) -> dict[str, dict[str, str]]:
    return kit.callers(app_client, engine)


def test_a_body_that_is_not_json_is_415_on_every_json_route(
    app_client: TestClient, callers: dict[str, dict[str, str]]
) -> None:
    for path, caller in ROUTES:
        for headers, body in NOT_JSON:
            answer = app_client.post(path, content=body, headers={**callers[caller], **headers})
            assert answer.status_code == 415, (path, headers, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            problem = answer.json()
            assert problem["type"].endswith("/unsupported-media-type")
            assert "application/json" in problem["detail"]
        # JSON, with a +json suffix or a charset, is read as before (the body is then judged).
        for media in ("application/json; charset=utf-8", "application/merge-patch+json"):
            answer = app_client.post(
                path, content=b"{}", headers={**callers[caller], "Content-Type": media}
            )
            assert answer.status_code != 415, (path, media)
        # Authentication comes first: no token is 401 whatever the body.
        answer = app_client.post(path, content=b"a=b", headers=dict(NOT_JSON[0][0]))
        assert answer.status_code == 401, path


def test_every_route_reading_a_json_body_refuses_other_media_types(settings: Settings) -> None:
    """A JSON route added later gets `JsonOnly` too, or this names it."""
    check = JsonOnly.__metadata__[0].dependency
    missing, checked = [], 0
    for path, _, route in kit.routes(create_app(settings)):
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        if isinstance(route.body_field.field_info, params.Form):
            continue  # OAuth and dashboard forms
        checked += 1
        if check not in [d.call for d in route.dependant.dependencies]:
            missing.append(path)
    assert checked >= 6  # the routes in ROUTES at least: the walk does find them
    assert missing == []
