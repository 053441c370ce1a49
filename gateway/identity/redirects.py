"""Redirect URIs a client registers: where its authorisation answers go.

FAPI 2.0 wants https and an exact match; the one exception is a loopback
address over http, for the demo and a developer's machine (RFC 8252 §7.3).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.errors import InvalidValue

MAX_REDIRECT_URI = 512
MAX_REDIRECT_URIS = 10
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def check_redirect_uri(uri: str) -> str:
    """`uri` if a client may register it, or InvalidValue saying why not."""
    if not uri or len(uri) > MAX_REDIRECT_URI:
        raise InvalidValue(f"redirect_uri: 1 to {MAX_REDIRECT_URI} characters")
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in uri):
        raise InvalidValue("redirect_uri: printable ASCII without spaces only")
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        raise InvalidValue("redirect_uri: not a URL") from None
    if "#" in uri:
        raise InvalidValue("redirect_uri: no fragment (RFC 6749 §3.1.2)")
    if not host or parts.username is not None or parts.password is not None:
        raise InvalidValue("redirect_uri: an absolute URL with a host and no user info")
    if parts.scheme == "https":
        return uri
    if parts.scheme == "http" and host in LOOPBACK:
        return uri
    raise InvalidValue("redirect_uri: https only (http for 127.0.0.1 or localhost)")


def check_redirect_uris(uris: list[str]) -> list[str]:
    if len(uris) > MAX_REDIRECT_URIS:
        raise InvalidValue(f"redirect_uris: at most {MAX_REDIRECT_URIS}")
    return sorted({check_redirect_uri(uri) for uri in uris})
