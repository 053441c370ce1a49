"""Compact JWS and JWKs, on `joserfc`, held to what the gateway accepts.

Every token type the gateway handles (client assertions, access tokens, DPoP
proofs, signed reports) goes through `parse` and `verify`. joserfc splits,
decodes, signs and verifies; this module adds the gateway's rules around it:

- the algorithm is bound to the key's type (`alg_for`), never taken from the
  token alone, and each verification gets a joserfc registry holding only the
  algorithms both the caller and the key allow: `none`, HS256 signed with a
  public key, and key-type confusion cannot pass;
- headers that would make us fetch or trust a key named by the sender (`jku`,
  `x5u`, `x5c`, and `jwk` outside DPoP) and any `crit` extension are refused,
  and so is a header naming a member twice (joserfc's JSON decoding would keep
  the last);
- tokens are at most `MAX_TOKEN_BYTES`.

Two calls made on every request bypass joserfc for `cryptography` directly
(fast_path.py; docs/performance.md, "JOSE", has the numbers): `parse` with
`decoded` (a DPoP proof whose header was decoded and checked before) and its
`verify`, and `signature_of` (a report's signature).

Keys stay `cryptography` objects at this interface; each is wrapped into a
joserfc key once (`_wrapped`), since joserfc derives a key's JWK form on its
first use.

Errors: `JoseError` with a short reason safe to show to the caller.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import errors as jose_errors
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jwk import thumbprint as jwk_thumbprint

from gateway.keys import fast_path

MAX_TOKEN_BYTES = 8192
PublicKey = fast_path.PublicKey
PrivateKey = fast_path.PrivateKey
ClientPrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey  # what a JWK file holds
_MAX_PAYLOAD_BYTES = 1 << 20  # a platform's signed envelope (adapters) is the largest
_FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "x5c", "crit"})
_LibKey = ECKey | OKPKey | RSAKey
# RFC 9864 renames EdDSA (over Ed25519) `Ed25519`; our keys, tokens and clients
# say EdDSA, and both names are accepted. joserfc warns on every use of the old
# name, which would cost each EdDSA verification a warnings lookup.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)


class JoseError(Exception):
    """A token that is malformed, wrongly signed or not acceptable here."""


@dataclass(frozen=True, slots=True)
class Compact:
    header: dict[str, Any]
    claims: dict[str, Any]
    # joserfc's parse, what `verify` checks; None on the fast path (a header
    # decoded before), which keeps the signing input and signature instead.
    signed: jws.CompactSignature | None
    signing_input: bytes = b""
    signature: bytes = b""


def b64encode(data: bytes) -> str:
    return b64(data).decode("ascii")


def b64(data: bytes) -> bytes:
    """base64url without padding, as bytes (for building large signing inputs)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64decode(text: str) -> bytes:
    if "=" in text:
        raise JoseError("padding is not allowed in base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JoseError("bad base64url") from None


# --- registries: the algorithms one verification or signature may use ------


def _registry(algorithms: Collection[str]) -> jws.JWSRegistry:
    found = _REGISTRIES.get(frozenset(algorithms))
    if found is None:
        # Unknown header members are the sender's business (RFC 7515 4.2);
        # the ones we refuse are refused in `parse`, before any of this.
        found = jws.JWSRegistry(algorithms=sorted(algorithms), strict_check_header=False)
        # `parse`'s own cap bounds what is parsed; joserfc's header cap (512
        # bytes) would refuse a DPoP proof carrying an RSA key.
        found.max_header_length = MAX_TOKEN_BYTES
        found.max_payload_length = _MAX_PAYLOAD_BYTES
        _REGISTRIES[frozenset(algorithms)] = found
    return found


_REGISTRIES: dict[frozenset[str], jws.JWSRegistry] = {}
_PARSING = _registry(("ES256", "EdDSA", "Ed25519", "PS256"))


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise JoseError("a header member is given twice")
    return found


def _checked_header(segment: str, allow_jwk_header: bool) -> None:
    """Our refusals, on the header's own bytes: a member twice, a key named by
    the sender, `crit`."""
    try:
        header = json.loads(b64decode(segment), object_pairs_hook=_unique_members)
    except (ValueError, UnicodeDecodeError):
        raise JoseError("header or payload is not JSON") from None
    if not isinstance(header, dict):
        raise JoseError("header and payload must be JSON objects")
    forbidden = _FORBIDDEN_HEADERS.intersection(header)
    if forbidden or ("jwk" in header and not allow_jwk_header):
        raise JoseError(f"header parameter {sorted(forbidden or {'jwk'})[0]!r} is not accepted")


def parse(
    token: str,
    *,
    allow_jwk_header: bool = False,
    decoded: Mapping[str, dict[str, Any]] | None = None,
    max_bytes: int = MAX_TOKEN_BYTES,
    claims: bool = True,
) -> Compact:
    """Split and decode a compact JWS; signature not yet checked.

    `decoded` maps header segments (base64url) to headers this function
    decoded and accepted before: a caller that sees the same header on every
    token (a client's DPoP proofs) saves decoding it again. `claims=False`
    leaves a payload that is not a JSON object to the caller (`Compact.claims`
    is then empty).
    """
    if len(token) > max_bytes:
        raise JoseError("token too large")
    if token.count(".") != 2:
        raise JoseError("not a compact JWS")
    segment = token.partition(".")[0]
    header = decoded.get(segment) if decoded else None
    if header is not None:
        return _parse_known(token, header)
    _checked_header(segment, allow_jwk_header)
    try:
        signed = jws.extract_compact(token.encode("ascii"), registry=_PARSING)
        decoded_claims = orjson.loads(signed.payload) if claims else {}
    except UnicodeEncodeError:
        raise JoseError("not a compact JWS") from None
    except jose_errors.MissingAlgorithmError:
        raise JoseError("algorithm None is not accepted for this key") from None
    except jose_errors.DecodeError as exc:
        raise JoseError(
            "not a compact JWS" if "Signature" in str(exc) else "bad base64url"
        ) from None
    except orjson.JSONDecodeError:
        raise JoseError("header or payload is not JSON") from None
    except jose_errors.JoseError:
        raise JoseError("not a compact JWS") from None
    if not isinstance(decoded_claims, dict):
        raise JoseError("header and payload must be JSON objects")
    return Compact(signed.protected, decoded_claims, signed)


def _parse_known(token: str, header: dict[str, Any]) -> Compact:
    """The fast path (fast_path.py): the header was decoded and checked before;
    the payload alone is decoded, and the signature kept for `verify`."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseError("not a compact JWS")
    try:
        claims = orjson.loads(b64decode(parts[1]))
    except orjson.JSONDecodeError:
        raise JoseError("header or payload is not JSON") from None
    if not isinstance(claims, dict):
        raise JoseError("header and payload must be JSON objects")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return Compact(header, claims, None, signing_input, b64decode(parts[2]))


def alg_for(key: PublicKey | PrivateKey) -> tuple[str, ...]:
    """The algorithms a key may be used with: fixed by its type."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return ("ES256",) if key.curve.name == "secp256r1" else ()
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return ("EdDSA", "Ed25519")
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return ("PS256",) if key.key_size >= 2048 else ()
    return ()


def verify(compact: Compact, key: PublicKey, allowed: frozenset[str]) -> None:
    """Check the signature with `key`; the header's alg must suit the key and be allowed."""
    alg = compact.header.get("alg")
    usable = allowed.intersection(alg_for(key))
    if not isinstance(alg, str) or alg not in usable:
        raise JoseError(f"algorithm {alg!r} is not accepted for this key")
    if compact.signed is None:
        valid = fast_path.verify(compact.signing_input, compact.signature, key)
    else:
        try:
            valid = jws.validate_compact(compact.signed, _wrapped(key), registry=_registry(usable))
        except jose_errors.JoseError as exc:
            raise JoseError(f"header not accepted: {exc.error}") from None
    if not valid:
        raise JoseError("bad signature")


def sign(header: dict[str, Any], claims: dict[str, Any], key: PrivateKey) -> str:
    """A compact JWS of `claims`; `header` must carry alg (and typ, kid)."""
    return sign_bytes(header, orjson.dumps(claims), key)


def sign_bytes(header: dict[str, Any], payload: bytes, key: PrivateKey) -> str:
    """A compact JWS of exactly these payload bytes, signed by joserfc's
    algorithm for the key's type. The header is the caller's as given: refusing
    headers is the verifier's part."""
    head = b64(orjson.dumps(header))
    body = b64(payload)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = _ES256
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        alg = _EDDSA
    else:
        alg = _PS256
    signature = alg.sign(b"%s.%s" % (head, body), _wrapped(key))
    return f"{head.decode()}.{body.decode()}.{b64encode(signature)}"


_ES256, _EDDSA, _PS256 = (_PARSING.get_alg(name) for name in ("ES256", "EdDSA", "PS256"))


def signature_of(signing_input: bytes, key: PrivateKey) -> bytes:
    """The JWS signature (raw r||s for ES256) over a signing input the caller
    assembled: a report's, on every request (the fast path, fast_path.py)."""
    return fast_path.sign(signing_input, key)


def _wrapped(key: PublicKey | PrivateKey) -> _LibKey:
    """joserfc's key for one of ours, made once per key object: joserfc derives
    its JWK form on first use (tens of µs), which must stay off the request path."""
    found = _WRAPPED.get(id(key))
    if found is not None:
        return found[1]
    lib: _LibKey
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        lib = ECKey.import_key(key)
    elif isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        lib = OKPKey.import_key(key)
    else:
        lib = RSAKey.import_key(key)
    if len(_WRAPPED) >= _WRAPPED_MAX:
        _WRAPPED.pop(next(iter(_WRAPPED)))
    # The entry holds the key itself, so its id cannot be reused while it is here.
    _WRAPPED[id(key)] = (key, lib)
    return lib


_WRAPPED: dict[int, tuple[PublicKey | PrivateKey, _LibKey]] = {}
_WRAPPED_MAX = 4096


# --- JWK ------------------------------------------------------------------


def public_key_from_jwk(jwk: dict[str, Any]) -> PublicKey:
    """Import a public JWK (EC P-256, OKP Ed25519, RSA >= 2048 bits)."""
    kty = jwk.get("kty")
    if not (
        (kty == "EC" and jwk.get("crv") == "P-256")
        or (kty == "OKP" and jwk.get("crv") == "Ed25519")
        or kty == "RSA"
    ):
        raise JoseError(f"unsupported key type {kty!r}")
    try:
        key = _JWK_CLASSES[kty].import_key(_members(jwk, _PUBLIC_MEMBERS[kty])).public_key
    except (ValueError, TypeError, jose_errors.JoseError):
        raise JoseError("invalid JWK") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise JoseError("RSA keys must have at least 2048 bits")
    assert isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey)
    return key


def _members(jwk: dict[str, Any], names: tuple[str, ...]) -> dict[str, str | list[str]]:
    """The named members, each a string: nothing else of a sender's JWK reaches joserfc."""
    members = {name: jwk.get(name) for name in names}
    if not all(isinstance(value, str) for value in members.values()):
        raise JoseError("JWK member must be a base64url string")
    return {name: str(value) for name, value in members.items()}


_JWK_CLASSES: dict[str, type[_LibKey]] = {"EC": ECKey, "OKP": OKPKey, "RSA": RSAKey}
_PUBLIC_MEMBERS = {
    "EC": ("kty", "crv", "x", "y"),
    "OKP": ("kty", "crv", "x"),
    "RSA": ("kty", "e", "n"),
}


def public_jwk(key: PublicKey | PrivateKey) -> dict[str, str]:
    """The public JWK members of a key (no kid, use or alg)."""
    whole = _wrapped(key).as_dict(private=False)
    return {name: str(whole[name]) for name in _PUBLIC_MEMBERS[str(whole["kty"])]}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url)."""
    members = _PUBLIC_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise JoseError("unsupported key type")
    return jwk_thumbprint({name: jwk[name] for name in members if name in jwk})


def private_jwk(key: ClientPrivateKey) -> dict[str, str]:
    """A private JWK (EC P-256 or Ed25519) for a client to keep; never for the gateway's keys."""
    jwk = public_jwk(key)
    jwk["d"] = str(_wrapped(key).as_dict(private=True)["d"])
    return jwk


def private_key_from_jwk(jwk: dict[str, Any]) -> ClientPrivateKey:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if not ((kty == "EC" and crv == "P-256") or (kty == "OKP" and crv == "Ed25519")):
        raise JoseError("only EC P-256 and Ed25519 private JWKs are supported here")
    try:
        members = _members(jwk, (*_PUBLIC_MEMBERS[kty], "d"))
        key = _JWK_CLASSES[kty].import_key(members).private_key
    except (ValueError, TypeError, jose_errors.JoseError):
        raise JoseError("invalid JWK") from None
    assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
    return key
