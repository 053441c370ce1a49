"""Shared pieces for the OWASP API Top 10 tests: callers of every kind, route walking."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.routing import _IncludedRouter
from sqlalchemy import Engine
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient

from testkit.builders import code
from testkit.clients import ClientKey, register
from tests.identity.test_token_flow import get_token

# Each kind of client the registry knows, with the org code a bank is named by.
KINDS: dict[str, tuple[str, str | None]] = {
    "bank": ("bank", "BOCD"),
    "other_bank": ("bank", "CCB-CD"),
    "department": ("department", None),
    "platform": ("platform", None),
    "risk_office": ("risk_office", "SANDBOX"),
    "regulator": ("regulator", None),
}


def callers(client: TestClient, engine: Engine) -> dict[str, dict[str, str]]:
    """A bearer header for one registered client of every kind."""
    headers = {}
    for name, (client_type, org_code) in KINDS.items():
        key: ClientKey = register(
            engine, name.replace("_", "-"), client_type=client_type, org_code=org_code
        )
        headers[name] = {"Authorization": f"Bearer {get_token(client, key)}"}
    return headers


def consent_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "credit_code": code(1),
        "grantee": "BOCD",
        "purpose": "loan_application",
        "scopes": ["basic"],
        "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "evidence": {"document_sha256": "ab" * 32, "signer": "法定代表人", "channel": "direct"},
    }
    body.update(overrides)
    return body


def routes(app: FastAPI) -> Iterator[tuple[str, frozenset[str], BaseRoute]]:
    """(path, methods, route) of every route the app serves, included routers flattened."""

    def walk(
        found: list[BaseRoute], prefix: str
    ) -> Iterator[tuple[str, frozenset[str], BaseRoute]]:
        for route in found:
            if isinstance(route, _IncludedRouter):
                inner = prefix + (route.include_context.prefix or "")
                yield from walk(route.original_router.routes, inner)
            elif isinstance(route, Route):
                yield prefix + route.path, frozenset(route.methods or ()), route
            else:  # a mount or websocket would be an undocumented door: surface it
                yield prefix + str(getattr(route, "path", route)), frozenset(), route

    yield from walk(app.router.routes, "")
