"""OWASP API8 (security misconfiguration), API9 (improper inventory) and the
API2 sweep: every documented operation refuses a request without credentials.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from gateway.middleware import GatewayMiddleware
from gateway.settings import Settings
from testkit.builders import code
from tests.conftest import store_at
from tests.security.kit import routes


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL and Redis, as in production."""
    return store_at("postgresql", request)


# Routes served but not in the OpenAPI document, and why.
UNDOCUMENTED = {
    ("/openapi.json", "GET"): "the document itself (the spec names it as the reference)",
    ("/docs", "GET"): "the public document as one page (gateway/reference.py); no data",
    ("/dashboard/login", "GET"): "dashboard HTML: human login form (CSRF pre-session)",
    ("/dashboard/login", "POST"): "dashboard: the login form's target",
    ("/dashboard/logout", "POST"): "dashboard: needs the session and its CSRF token",
    ("/dashboard", "GET"): "dashboard HTML, session only",
    ("/dashboard/stream", "GET"): "dashboard live rows (SSE), session only",
    ("/dashboard/alerts/{alert_id}", "GET"): "dashboard HTML, session only",
    ("/dashboard/alerts/{alert_id}/{action}", "POST"): "dashboard form, session + CSRF",
    ("/dashboard/enterprises/{credit_code}/loans", "GET"): "dashboard HTML, session only",
    ("/dashboard/static/{name}", "GET"): "the dashboard's own JS/CSS, from a fixed list",
    ("/oauth/authorize", "GET"): "the consent page (HTML): portal session, else the login",
    ("/oauth/authorize", "POST"): "the consent page's decision: portal session + CSRF",
    ("/portal/login", "GET"): "portal: starts the enterprise's OpenID Connect login",
    ("/portal/login/callback", "GET"): "portal: the provider's answer (state bound to browser)",
    ("/portal/logout", "POST"): "portal: needs the session and its CSRF token",
    ("/portal", "GET"): "portal HTML, session only",
    ("/portal/consents", "GET"): "portal HTML, session only",
    ("/portal/consents/{consent_id}/revoke", "GET"): "portal HTML (confirmation), session only",
    ("/portal/consents/{consent_id}/revoke", "POST"): "portal form, session + CSRF",
    ("/portal/access-history", "GET"): "portal HTML, session only: its enterprise's trail",
    ("/portal/report", "GET"): "portal HTML, session only: its own report, audited",
    ("/portal/report/print", "GET"): "portal: its own printable report, audited self_query",
    ("/portal/report.json", "GET"): "portal: its own signed report, audited self_query",
    ("/portal/disputes", "GET"): "portal HTML, session only",
    ("/portal/disputes", "POST"): "portal form, session + CSRF",
    ("/portal/disputes/new", "GET"): "portal HTML, session only: a record of its report",
    ("/portal/repairs", "GET"): "portal HTML, session only",
    ("/portal/repairs/apply", "GET"): "portal HTML, session only: its own penalty",
    ("/portal/repairs/apply", "POST"): "portal multipart form, session + CSRF, bounded",
    ("/portal/repairs/{application_id}", "GET"): "portal HTML, session only: its own",
    ("/dashboard/repairs", "GET"): "dashboard HTML, a department reviewer's session only",
    ("/dashboard/repairs/{application_id}", "GET"): "dashboard HTML, a reviewer's session only",
    (
        "/dashboard/repairs/{application_id}/evidence/{evidence_id}",
        "GET",
    ): "an evidence file (attachment), a reviewer's session only",
    (
        "/dashboard/repairs/{application_id}/decision",
        "POST",
    ): "dashboard form, a reviewer's session + CSRF",
}
# Documented operations that are public by design (the rest need a token).
PUBLIC = {
    "GET /healthz", "GET /readyz", "GET /metrics",
    "GET /.well-known/oauth-authorization-server", "GET /.well-known/jwks.json",
}  # fmt: skip
# Authenticated by the request itself, not by a bearer token.
OWN_AUTH = {
    "POST /oauth/token", "POST /oauth/revoke", "POST /oauth/introspect", "POST /oauth/par",
    "POST /v1/platforms/kechuangtong/events", "POST /v1/platforms/nongdaitong/messages",
    "POST /v1/platforms/chuangfu-tianfu/messages",
}  # fmt: skip
LEAKS = re.compile(
    r"Traceback|File \"|sqlalchemy|psycopg|asyncpg|redis\.exceptions|/work/|\.py\", line"
)


def test_every_route_is_documented_or_listed_with_a_reason(app_client: TestClient) -> None:
    app: Any = app_client.app
    documented = {
        (path, method.upper())
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    served = set()
    for path, methods, route in routes(app):
        assert methods, f"{path}: {type(route).__name__} is neither a route nor documented"
        served |= {(path, m) for m in methods if m != "HEAD"}
    undocumented = served - documented
    assert undocumented == set(UNDOCUMENTED), "document the route, or list it with its reason"
    assert documented <= served


def _filled(path: str) -> str:
    values = {
        "credit_code": code(1), "consent_id": "cns_x", "alert_id": "alr_x", "category": "penalty",
        "record_id": "1", "dispute_id": "dsp_x", "report_id": "rpt_AAAAAAAAAAAAAAAA",
        "application_id": "rpr_x", "evidence_id": "1",
    }  # fmt: skip
    return re.sub(r"\{(\w+)\}", lambda m: values[m[1]], path)


def test_nothing_answers_without_credentials_but_the_public_few(app_client: TestClient) -> None:
    app: Any = app_client.app
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            name = f"{method.upper()} {path}"
            answer = app_client.request(method.upper(), _filled(path))
            assert not LEAKS.search(answer.text), (name, answer.text[:300])
            if name in PUBLIC:
                assert answer.status_code in (200, 503), name
            elif name in OWN_AUTH:
                assert answer.status_code >= 400 or b"<RspCode>0000" not in answer.content, name
            else:
                checked += 1
                assert answer.status_code == 401, (name, answer.text)
                assert answer.headers["www-authenticate"].startswith("Bearer")
    assert checked >= 15
    for path in ("/dashboard", "/dashboard/stream", "/dashboard/alerts/alr_x", "/dashboard/repairs",
                 "/dashboard/repairs/rpr_x"):  # fmt: skip
        answer = app_client.get(path, follow_redirects=False)
        assert answer.status_code in (303, 401), path
        assert "alr_x" not in answer.headers.get("location", "")


UNKNOWN = [
    "/admin", "/debug", "/.env", "/.git/config", "/actuator/health", "/server-status",
    "/console", "/graphql", "/swagger.json", "/openapi.yaml", "/v2/consents", "/v1/clients",
    "/v1/keys", "/v1/internal/reset", "/v1/consents/../../etc/passwd",
    "/dashboard/static/../app.py", "/dashboard/static/%2e%2e%2fapp.py",
]  # fmt: skip


def test_undocumented_paths_and_methods_do_not_answer(app_client: TestClient) -> None:
    for path in UNKNOWN:
        answer = app_client.get(path)
        assert answer.status_code == 404, (path, answer.status_code)
        assert answer.headers["content-type"] == "application/problem+json"
        assert not LEAKS.search(answer.text)
    for method, path in (
        ("DELETE", "/v1/consents/cns_x"), ("PUT", "/v1/alerts/alr_x"), ("PATCH", "/v1/consents"),
        ("TRACE", "/healthz"), ("DELETE", "/.well-known/jwks.json"), ("PUT", "/oauth/token"),
    ):  # fmt: skip
        answer = app_client.request(method, path)
        assert answer.status_code == 405, (method, path)
        assert answer.headers["content-type"] == "application/problem+json"


def test_headers_cors_and_debug(app_client: TestClient) -> None:
    app: Any = app_client.app
    assert app.debug is False
    assert not any("debug" in name for name in Settings.model_fields)
    evil = {"Origin": "https://evil.example"}
    for answer in (
        app_client.get("/healthz", headers=evil),
        app_client.get("/v1/consents", headers=evil),  # a 401 problem
        app_client.get("/nowhere", headers=evil),
        app_client.post("/oauth/token", data={"grant_type": "password"}, headers=evil),
    ):
        assert "access-control-allow-origin" not in answer.headers
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert "strict-transport-security" not in answer.headers  # plain http here
    preflight = app_client.options(
        "/v1/consents",
        headers={**evil, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"},
    )  # fmt: skip
    assert preflight.status_code == 405
    assert not [h for h in preflight.headers if h.startswith("access-control-")]
    # An answer that chose its own caching or page policy keeps it.
    assert app_client.get("/.well-known/jwks.json").headers["cache-control"] == "max-age=60"
    docs = app_client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"].startswith("default-src 'none'; style-src")
    login = app_client.get("/dashboard/login")
    assert "default-src 'none'" not in login.headers["content-security-policy"]


async def test_hsts_only_when_the_gateway_is_served_over_https() -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict[str, Any]] = []

    async def capture(message: Any) -> None:
        sent.append(message)

    for https, expected in ((True, True), (False, False)):
        sent.clear()

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        layer = GatewayMiddleware(ok, max_body_bytes=1024, https=https)
        await layer({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, capture)
        names = {name for name, _ in sent[0]["headers"]}
        assert (b"strict-transport-security" in names) is expected
