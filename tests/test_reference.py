"""/docs is a page of our own, rendered from /openapi.json, that loads nothing."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.reference import render
from tests.conftest import store_at


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """SQLite, the embedded mode."""
    return store_at("sqlite", request)


class Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))


def test_docs_lists_every_operation_and_schema_and_runs_no_script(app_client: TestClient) -> None:
    page = app_client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    document = app_client.get("/openapi.json").json()
    parsed = Ids()
    parsed.feed(page.text)
    for path, item in document["paths"].items():
        for method in item:
            assert f"<code>{path}</code>" in page.text, path
            assert any(i.startswith(method + "-") for i in parsed.ids), (method, path)
    for name in document["components"]["schemas"]:
        assert f"schema-{name}" in parsed.ids, name
    # Every link inside the page lands on an anchor of it, or on the document itself.
    for link in parsed.links:
        assert link == "/openapi.json" or link[1:] in parsed.ids, link
    assert "<script" not in page.text.lower()
    policy = page.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'")
    style = re.search(r"<style>(.*?)</style>", page.text, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy, "the style block must be the one the policy allows"
    # Swagger UI's and ReDoc's pages (scripts from a CDN) are gone.
    for gone in ("/redoc", "/docs/oauth2-redirect"):
        assert app_client.get(gone).status_code == 404


def test_descriptions_are_escaped() -> None:
    hostile: dict[str, Any] = {
        "info": {"title": "<b>t</b>", "version": "1", "summary": '"><script>x()</script>'},
        "paths": {
            "/a/{x}": {
                "get": {
                    "summary": "<img src=x>",
                    "description": "use `<i>` here",
                    "parameters": [{"name": "x<", "in": "path", "schema": {"enum": ["<e>"]}}],
                    "responses": {"200": {"description": "<u>ok</u>"}},
                }
            }
        },
        "components": {"schemas": {"S<": {"properties": {"m<": {"type": "string"}}}}},
    }
    html = render(hostile)
    for raw in ("<script>", "<img", "<i>", "<u>", "<e>", "x<", "m<", "<b>t"):
        assert raw not in html, raw
    assert "<code>&lt;i&gt;</code>" in html
