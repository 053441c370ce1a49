"""Every page the gateway serves works on an air-gapped network: nothing it serves
loads a script, style, font, image or frame from another origin."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from tests.conftest import store_at
from tests.dashboard.test_login import PASSWORD, login, make_user
from tests.dashboard.test_pages import raise_alert
from tests.reports.test_reports_api import bank_auth, consent, fetch

__all__ = ["bank_auth"]

# Attributes a browser fetches (or navigates a form to) by itself.
_FETCHED = {"src", "href", "srcset", "action", "poster", "data", "formaction", "background"}
_REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.I)
# Identifiers that look like URLs but are never fetched.
_NOT_FETCHED = ("http://www.w3.org/2000/svg",)


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """SQLite, the embedded mode."""
    return store_at("sqlite", request)


class Fetches(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.remote: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in _FETCHED and value and _REMOTE.match(value):
                self.remote.append(f"<{tag} {name}={value}>")


def remote_references(text: str, content_type: str) -> list[str]:
    found = []
    if content_type.startswith("text/html"):
        parser = Fetches()
        parser.feed(text)
        found += parser.remote
    # CSS url()/@import, and any absolute URL in a page, style or script.
    found += re.findall(r"url\(\s*['\"]?\s*(?:https?:)?//[^)]*\)|@import[^;]*//[^;]*", text)
    for absolute in re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"'<>)]*", text):
        if not absolute.startswith(_NOT_FETCHED):
            found.append(absolute)
    return found


def test_no_served_page_references_a_remote_asset(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    alert_id = raise_alert(engine, 1)
    granted = consent(app_client, bank_auth)
    served = {
        "/docs": app_client.get("/docs"),
        "/dashboard/login": app_client.get("/dashboard/login"),
        "/dashboard/login?lang=en": app_client.get("/dashboard/login?lang=en"),
        "report text/html": fetch(app_client, bank_auth, granted["id"], Accept="text/html"),
    }
    make_user(engine)
    assert login(app_client, "wang.fang", PASSWORD).status_code == 303
    dashboard = app_client.get("/dashboard")
    served["/dashboard"] = dashboard
    served["alert page"] = app_client.get(f"/dashboard/alerts/{alert_id}")
    served["missing alert"] = app_client.get("/dashboard/alerts/nope")
    for asset in re.findall(r'(?:src|href)="(/dashboard/static/[^"]+)"', dashboard.text):
        served[asset] = app_client.get(asset)
    assert any(p.startswith("/dashboard/static/") and p.split("?")[0].endswith(".js")
               for p in served), "the dashboard's scripts were not found"  # fmt: skip
    for page, answer in served.items():
        kind = answer.headers.get("content-type", "")
        if page == "missing alert" and not kind.startswith("text/html"):
            continue  # a problem+json body: its `type` URI names the problem, never loaded
        assert answer.status_code == 200, (page, answer.status_code)
        assert kind.startswith(("text/html", "text/css", "text/javascript")), (page, kind)
        assert remote_references(answer.text, kind) == [], page


def test_the_check_finds_remote_assets() -> None:
    page = (
        '<script src="https://cdn.example.net/ui.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.com/a.css"><img src="/local.png">'
        "<style>body{background:url('https://x.example.org/i.png')}</style>"
    )
    found = remote_references(page, "text/html; charset=utf-8")
    assert "<script src=https://cdn.example.net/ui.js>" in found
    assert "<link href=//fonts.example.com/a.css>" in found
    assert any("x.example.org" in f for f in found)
    assert not any("local.png" in f for f in found)
    assert remote_references('const NS = "http://www.w3.org/2000/svg";', "text/javascript") == []
