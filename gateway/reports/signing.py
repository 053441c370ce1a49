"""Signing reports so a bank can prove, with our JWKS alone, that we sent them.

The signed bytes are the report's RFC 8785 (JCS) canonical JSON. Reports hold
only strings, integers, booleans, null, arrays and objects with ASCII member
names, never floats; for such values JCS is exactly sorted-key compact JSON
with UTF-8 left unescaped, which orjson writes. The builder passes
each built report through `without_floats` so that stays true.

- `application/jose`: one compact JWS whose payload is the canonical report.
- `application/json`: the report itself plus `signature`, a detached JWS
  (RFC 7515 appendix F: `header..signature`) over the report without that member.

Every request's report is a shared consent cut plus four members of its own,
so the canonical form is assembled from members serialised once (`Members`):
the cut's are kept with it, only the request's own are written per request.
The JSON answer is the same canonical bytes with `signature` in its sorted place.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.identity import jose
from gateway.identity.keys import LoadedKey

REPORT_TYP = "xyd-credit-report+jws"


Members = dict[str, bytes]  # top-level member name → its value as canonical JSON


def canonical(report: dict[str, Any]) -> bytes:
    return orjson.dumps(report, option=orjson.OPT_SORT_KEYS)


def members(report: dict[str, Any]) -> Members:
    return {name: canonical(value) for name, value in report.items()}


def joined(parts: Members) -> bytes:
    """The canonical JSON of the object whose members are `parts`: what
    `canonical` gives for the report they came from."""
    return b"{%s}" % b",".join(orjson.dumps(name) + b":" + parts[name] for name in sorted(parts))


def _header(key: LoadedKey) -> dict[str, Any]:
    return {"alg": key.alg, "kid": key.kid, "typ": REPORT_TYP}


def compact(payload: bytes, key: LoadedKey) -> str:
    """A compact JWS of `payload`, a report's canonical JSON."""
    return jose.sign_bytes(_header(key), payload, key.private)


def detached(payload: bytes, key: LoadedKey) -> str:
    head, _, signature = compact(payload, key).split(".")
    return f"{head}..{signature}"


def signed_json(parts: Members, key: LoadedKey) -> bytes:
    """The `application/json` answer: the report's members and `signature`, a
    detached JWS over the report without it, in canonical order."""
    signature = detached(joined(parts), key)
    return joined({**parts, "signature": orjson.dumps(signature)})


def without_floats(value: Any) -> Any:
    """`value` with any float written as a decimal string (JCS and orjson differ on floats)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {key: without_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_floats(item) for item in value]
    return value
