"""Signing reports so a bank can prove, with our JWKS alone, that we sent them.

The signed bytes are the report's RFC 8785 (JCS) canonical JSON. Reports hold
only strings, integers, booleans, null, arrays and objects with ASCII member
names, never floats; for such values JCS is exactly sorted-key compact JSON
with UTF-8 left unescaped, which orjson writes. The builder passes
each built report through `without_floats` so that stays true.

- `application/jose`: one compact JWS whose payload is the canonical report.
- `application/json`: the report itself plus `signature`, a detached JWS
  (RFC 7515 appendix F: `header..signature`) over the report without that member.

Every request's report is a shared consent cut plus a few members of its own,
so the canonical form is assembled from members serialised once (`Members`):
the cut's are kept with it, only the request's own are written per request.
The JSON answer is the same canonical bytes with `signature` in its sorted place.

Both forms carry the same signature over the same signing input (the detached
form is the compact one with the payload left out), so a report kept as its
members and that signature gives back either form byte for byte
(`json_again`, `compact_again`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.keys import jose
from gateway.keys.store import LoadedKey

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
    """A cut's members that sort between those a request adds before them and
    after them (the score and the sections: nearly all the bytes), serialised
    once, with their base64url from each byte alignment."""

    after: str  # the request's members up to this name open the report
    names: tuple[str, ...]
    members: tuple[bytes, ...]  # `"name":value`, in order
    body: bytes  # `,member` for each
    # For s = 0, 1, 2: base64url of body[s:]'s whole 3-byte groups, and the
    # 0 to 2 bytes left over, encoded with whatever follows.
    body_b64: tuple[bytes, bytes, bytes]
    rest: tuple[bytes, bytes, bytes]
    later: Members  # the cut's members sorting after `before`, if any


def split(shared: Members, after: str, before: str) -> tuple[Members, Tail]:
    """`shared` as the members a request's own join at the opening (names up to
    `after`, which must sort no earlier than any name a request adds there) and
    the tail, encoded once: names after `after` and before `before`, which must
    sort no later than any name a request adds at the closing."""
    if not after < "signature" < before:
        raise ValueError("signature must sort into the tail")
    names = tuple(sorted(name for name in shared if after < name < before))
    members = tuple(_member(name, shared[name]) for name in names)
    body = b"".join(b"," + member for member in members)
    groups = [len(body[s:]) - len(body[s:]) % 3 for s in range(3)]
    head = {name: value for name, value in shared.items() if name <= after}
    later = {name: value for name, value in shared.items() if name >= before}
    tail = Tail(
        after, names, members, body,
        (jose.b64(body[:groups[0]]), jose.b64(body[1:1 + groups[1]]),
         jose.b64(body[2:2 + groups[2]])),
        (body[groups[0]:], body[1 + groups[1]:], body[2 + groups[2]:]),
        later,
    )  # fmt: skip
    return head, tail


def signed_json(head: Members, tail: Tail, key: LoadedKey) -> tuple[bytes, str]:
    """The `application/json` answer: the report's members and `signature`, a
    detached JWS over the report without it, in canonical order; and that
    signature. `head` holds the request's own members and the cut's that sort
    among them (`split`)."""
    opening_names = sorted(name for name in head if name <= tail.after)
    if not opening_names:
        raise ValueError("a report always holds its request's own members")
    closing = {name: value for name, value in head.items() if name > tail.after}
    closing.update(tail.later)
    closing_names = sorted(closing)
    if tail.names and closing_names and closing_names[0] < tail.names[-1]:
        raise ValueError(f"{closing_names[0]} sorts inside the cut's tail")
    opening = b"{" + b",".join(_member(name, head[name]) for name in opening_names)
    ending = [_member(name, closing[name]) for name in closing_names]
    end = b"".join(b"," + member for member in ending) + b"}"
    signature = _detached(_payload_b64(opening, tail, end), key)
    # signature sorts after the opening's names (split checks): among the rest.
    names = (*tail.names, *closing_names)
    after = (*tail.members, *ending)
    at = bisect.bisect(names, "signature")
    member = _member("signature", orjson.dumps(signature))
    body = opening + b"".join(b"," + m for m in (*after[:at], member, *after[at:])) + b"}"
    return body, signature


def _payload_b64(opening: bytes, tail: Tail, end: bytes) -> bytes:
    """base64url of opening + tail.body + end, the tail's groups not encoded again:
    the opening's last (len % 3) bytes and the tail's first few make a whole
    group, and the tail's remainder was encoded once for that alignment."""
    whole = len(opening) - len(opening) % 3
    borrowed = (3 - len(opening) % 3) % 3
    if len(tail.body) < borrowed:
        return jose.b64(opening + tail.body + end)
    return (
        jose.b64(opening[:whole])
        + jose.b64(opening[whole:] + tail.body[:borrowed])
        + tail.body_b64[borrowed]
        + jose.b64(tail.rest[borrowed] + end)
    )


def detached_of(compact_jws: str) -> str:
    """A compact JWS's detached form (the same signature, payload left out)."""
    head = compact_jws[: compact_jws.index(".")]
    return f"{head}..{compact_jws[compact_jws.rindex('.') + 1 :]}"


def compact_again(payload: bytes, detached_jws: str) -> bytes:
    """The compact JWS that `detached_jws` (over `payload`) was cut from."""
    head, _, signature = detached_jws.partition("..")
    return b"%s.%s.%s" % (head.encode("ascii"), jose.b64(payload), signature.encode("ascii"))


def json_again(parts: Members, detached_jws: str) -> bytes:
    """The `application/json` answer `signed_json` gave for these members."""
    return joined({**parts, "signature": orjson.dumps(detached_jws)})


def without_floats(value: Any) -> Any:
    """`value` with any float written as a decimal string (JCS and orjson differ on floats)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {key: without_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_floats(item) for item in value]
    return value
