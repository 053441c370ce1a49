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

import bisect
from dataclasses import dataclass
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
    return b"{%s}" % b",".join(_member(name, parts[name]) for name in sorted(parts))


def _member(name: str, value: bytes) -> bytes:
    found = _NAMES.get(name)
    if found is None:
        found = _NAMES[name] = orjson.dumps(name) + b":"
    return found + value


_NAMES: dict[str, bytes] = {}  # member name → `"name":`, for the few names reports have


def _header(key: LoadedKey) -> bytes:
    """The protected header, base64url: one per key, made once."""
    found = _HEADERS.get(key.kid)
    if found is None:
        header = {"alg": key.alg, "kid": key.kid, "typ": REPORT_TYP}
        found = _HEADERS[key.kid] = jose.b64(orjson.dumps(header))
    return found


_HEADERS: dict[str, bytes] = {}


def compact(payload: bytes, key: LoadedKey) -> str:
    """A compact JWS of `payload`, a report's canonical JSON."""
    payload_b64 = jose.b64(payload)
    head, signature = _sign(payload_b64, key)
    return (b"%s.%s.%s" % (head, payload_b64, signature)).decode()


def detached(payload: bytes, key: LoadedKey) -> str:
    """RFC 7515 appendix F: `header..signature`, the payload left out."""
    return _detached(jose.b64(payload), key)


def _detached(payload_b64: bytes, key: LoadedKey) -> str:
    return (b"%s..%s" % _sign(payload_b64, key)).decode()


def _sign(payload_b64: bytes, key: LoadedKey) -> tuple[bytes, bytes]:
    """The protected header and the signature over it and the payload, base64url."""
    head = _header(key)
    return head, jose.b64(jose.signature_of(b"%s.%s" % (head, payload_b64), key.private))


@dataclass(frozen=True, slots=True)
class Tail:
    """A cut's members that sort after every member a request adds (the score
    and the sections: nearly all the bytes), serialised once, with the
    base64url of what they close the report with from each byte alignment."""

    names: tuple[str, ...]
    members: tuple[bytes, ...]  # `"name":value`, in order
    closing: bytes  # `,member` for each, then `}`
    closing_b64: tuple[bytes, bytes, bytes]  # base64url of closing[s:] for s = 0, 1, 2


def split(shared: Members, after: str) -> tuple[Members, Tail]:
    """`shared` as the members a request's own join (names up to `after`, which
    must sort no earlier than any name a request adds) and the rest, once."""
    if after >= "signature":
        raise ValueError("signature must sort into the tail")
    names = tuple(sorted(name for name in shared if name > after))
    members = tuple(_member(name, shared[name]) for name in names)
    closing = b"".join(b"," + member for member in members) + b"}"
    head = {name: value for name, value in shared.items() if name <= after}
    return head, Tail(names, members, closing, (jose.b64(closing), jose.b64(closing[1:]),
                                                jose.b64(closing[2:])))  # fmt: skip


def signed_json(head: Members, tail: Tail, key: LoadedKey) -> bytes:
    """The `application/json` answer: the report's members and `signature`, a
    detached JWS over the report without it, in canonical order. `head` holds
    the request's own members and the cut's that sort among them."""
    if not head:
        raise ValueError("a report always holds its request's own members")
    opening = b"{" + b",".join(_member(name, head[name]) for name in sorted(head))
    # base64url of opening + closing without encoding the closing again: the
    # opening's last (len % 3) bytes and the closing's first few make a whole
    # group, and the closing's remainder was encoded once for that alignment.
    whole = len(opening) - len(opening) % 3
    borrowed = (3 - len(opening) % 3) % 3
    if len(tail.closing) > borrowed:
        payload_b64 = (
            jose.b64(opening[:whole])
            + jose.b64(opening[whole:] + tail.closing[:borrowed])
            + tail.closing_b64[borrowed]
        )
    else:
        payload_b64 = jose.b64(opening + tail.closing)
    signature = _member("signature", orjson.dumps(_detached(payload_b64, key)))
    at = bisect.bisect(tail.names, "signature")
    closing = (*tail.members[:at], signature, *tail.members[at:])
    return opening + b"".join(b"," + member for member in closing) + b"}"


def without_floats(value: Any) -> Any:
    """`value` with any float written as a decimal string (JCS and orjson differ on floats)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {key: without_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_floats(item) for item in value]
    return value
