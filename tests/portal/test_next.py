"""`next` after a login: a same-origin path under /portal or /oauth/authorize, or home."""

from __future__ import annotations

import pytest

from gateway.portal.web import HOME, safe_next

KEPT = [
    "/portal",
    "/portal/consents",
    "/portal/consents?lang=en",
    "/oauth/authorize?client_id=bank-a&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax",
]
REFUSED = [
    None, "", "portal", "https://evil.example/portal", "//evil.example", "///evil.example",
    "/\\evil.example", "/portal\\..\\..\\x", "/\t/evil.example", "/\n/evil.example",
    "/ /evil.example", "/portal/\x00", "http:/evil.example", "javascript:alert(1)",
    "/dashboard", "/v1/consents", "/oauth/authorizex", "/portalx", "/portal/../dashboard",
    "/portal/./x", "/portal/%2e%2e/dashboard", "/portal/%5c%5cevil", "/" + "p" * 2000,
    "/oauth/token",
]  # fmt: skip


@pytest.mark.parametrize("value", KEPT)
def test_a_path_in_the_portal_is_kept(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize("value", REFUSED)
def test_anything_else_goes_home(value: str | None) -> None:
    assert safe_next(value) == HOME
