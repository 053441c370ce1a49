"""Signing reports so a bank can prove, with our JWKS alone, that we sent them.

The signed bytes are the report's RFC 8785 (JCS) canonical JSON. Reports hold
only strings, integers, booleans, null, arrays and objects with ASCII member
names, never floats; for such values JCS is exactly sorted-key compact JSON
with UTF-8 left unescaped, which orjson writes. The builder passes
each built report through `without_floats` so that stays true.

- `application/jose`: one compact JWS whose payload is the canonical report.
- `application/json`: the report itself plus `signature`, a detached JWS
  (RFC 7515 appendix F: `header..signature`) over the report without that member.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.identity import jose
from gateway.identity.keys import LoadedKey

REPORT_TYP = "xyd-credit-report+jws"


def canonical(report: dict[str, Any]) -> bytes:
    return orjson.dumps(report, option=orjson.OPT_SORT_KEYS)


def _header(key: LoadedKey) -> dict[str, Any]:
    return {"alg": key.alg, "kid": key.kid, "typ": REPORT_TYP}


def compact(report: dict[str, Any], key: LoadedKey) -> str:
    return jose.sign_bytes(_header(key), canonical(report), key.private)


def detached(report: dict[str, Any], key: LoadedKey) -> str:
    head, _, signature = compact(report, key).split(".")
    return f"{head}..{signature}"


def without_floats(value: Any) -> Any:
    """`value` with any float written as a decimal string (JCS and orjson differ on floats)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {key: without_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_floats(item) for item in value]
    return value
