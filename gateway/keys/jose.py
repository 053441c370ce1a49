"""Compact JWS, small and strict, on `cryptography` alone.

Every token type the gateway handles (client assertions, access tokens, DPoP
proofs, signed reports) goes through `parse` and `verify`. The algorithm is
bound to the key's type, never taken from the token alone, so `none`, HS256
signed with a public key, and key-type confusion cannot pass. Headers that
would make us fetch or trust a key named by the sender (`jku`, `x5u`, `x5c`,
and `jwk` outside DPoP) and any `crit` extension are refused.

Errors: `JoseError` with a short reason safe to show to the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

MAX_TOKEN_BYTES = 8192
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
ClientPrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey  # what a JWK file holds
_PRIVATE_TYPES = (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey)
_FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "x5c", "crit"})


class JoseError(Exception):
    """A token that is malformed, wrongly signed or not acceptable here."""


@dataclass(frozen=True, slots=True)
class Compact:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


_ES256 = ec.ECDSA(hashes.SHA256())


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


def parse(
    token: str,
    *,
    allow_jwk_header: bool = False,
    decoded: Mapping[str, dict[str, Any]] | None = None,
) -> Compact:
    """Split and decode a compact JWS; signature not yet checked.

    `decoded` maps header segments (base64url) to headers this function
    decoded and accepted before: a caller that sees the same header on every
    token (a client's DPoP proofs) saves decoding it again.
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise JoseError("token too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseError("not a compact JWS")
    header = decoded.get(parts[0]) if decoded else None
    try:
        if header is None:
            header = orjson.loads(b64decode(parts[0]))
        claims = orjson.loads(b64decode(parts[1]))
    except orjson.JSONDecodeError:
        raise JoseError("header or payload is not JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JoseError("header and payload must be JSON objects")
    forbidden = _FORBIDDEN_HEADERS.intersection(header)
    if forbidden or ("jwk" in header and not allow_jwk_header):
        raise JoseError(f"header parameter {sorted(forbidden or {'jwk'})[0]!r} is not accepted")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return Compact(header, claims, signing_input, b64decode(parts[2]))


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
    if not isinstance(alg, str) or alg not in allowed or alg not in alg_for(key):
        raise JoseError(f"algorithm {alg!r} is not accepted for this key")
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(compact.signature) != 64:
                raise JoseError("bad signature")
            r = int.from_bytes(compact.signature[:32], "big")
            s = int.from_bytes(compact.signature[32:], "big")
            key.verify(encode_dss_signature(r, s), compact.signing_input, _ES256)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(compact.signature, compact.signing_input)
        else:
            key.verify(
                compact.signature,
                compact.signing_input,
                padding.PSS(padding.MGF1(hashes.SHA256()), hashes.SHA256().digest_size),
                hashes.SHA256(),
            )
    except InvalidSignature:
        raise JoseError("bad signature") from None


def sign(header: dict[str, Any], claims: dict[str, Any], key: PrivateKey) -> str:
    """A compact JWS of `claims`; `header` must carry alg (and typ, kid)."""
    return sign_bytes(header, orjson.dumps(claims), key)


def sign_bytes(header: dict[str, Any], payload: bytes, key: PrivateKey) -> str:
    """A compact JWS of exactly these payload bytes."""
    head = b64encode(orjson.dumps(header))
    body = b64encode(payload)
    signature = signature_of(f"{head}.{body}".encode("ascii"), key)
    return f"{head}.{body}.{b64encode(signature)}"


def signature_of(signing_input: bytes, key: PrivateKey) -> bytes:
    """The JWS signature (raw r||s for ES256) over a JWS signing input."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, _ES256))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(signing_input)
    return key.sign(
        signing_input,
        padding.PSS(padding.MGF1(hashes.SHA256()), hashes.SHA256().digest_size),
        hashes.SHA256(),
    )


# --- JWK ------------------------------------------------------------------


def _int(value: Any) -> int:
    if not isinstance(value, str):
        raise JoseError("JWK member must be a base64url string")
    return int.from_bytes(b64decode(value), "big")


def public_key_from_jwk(jwk: dict[str, Any]) -> PublicKey:
    """Import a public JWK (EC P-256, OKP Ed25519, RSA >= 2048 bits)."""
    kty = jwk.get("kty")
    try:
        if kty == "EC" and jwk.get("crv") == "P-256":
            return ec.EllipticCurvePublicNumbers(
                _int(jwk.get("x")), _int(jwk.get("y")), ec.SECP256R1()
            ).public_key()
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(b64decode(str(jwk.get("x"))))
        if kty == "RSA":
            key = rsa.RSAPublicNumbers(_int(jwk.get("e")), _int(jwk.get("n"))).public_key()
            if key.key_size < 2048:
                raise JoseError("RSA keys must have at least 2048 bits")
            return key
    except (ValueError, TypeError):
        raise JoseError("invalid JWK") from None
    raise JoseError(f"unsupported key type {kty!r}")


def public_jwk(key: PublicKey | PrivateKey) -> dict[str, str]:
    """The public JWK members of a key (no kid, use or alg)."""
    public = (
        key.public_key()
        if isinstance(
            key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
        )
        else key
    )
    if isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64encode(numbers.x.to_bytes(32, "big")),
            "y": b64encode(numbers.y.to_bytes(32, "big")),
        }
    if isinstance(public, ed25519.Ed25519PublicKey):
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            PublicFormat,
        )

        raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64encode(raw)}
    assert isinstance(public, rsa.RSAPublicKey)
    rsa_numbers = public.public_numbers()
    return {
        "kty": "RSA",
        "e": b64encode(rsa_numbers.e.to_bytes((rsa_numbers.e.bit_length() + 7) // 8, "big")),
        "n": b64encode(rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")),
    }


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url)."""
    required = {
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
        "RSA": ("e", "kty", "n"),
    }
    members = required.get(str(jwk.get("kty")))
    if members is None:
        raise JoseError("unsupported key type")
    canonical = orjson.dumps({name: jwk[name] for name in members if name in jwk})
    return b64encode(hashlib.sha256(canonical).digest())


def private_jwk(key: ClientPrivateKey) -> dict[str, str]:
    """A private JWK (EC P-256 or Ed25519) for a client to keep; never for the gateway's keys."""
    jwk = public_jwk(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        jwk["d"] = b64encode(key.private_numbers().private_value.to_bytes(32, "big"))
    else:
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        jwk["d"] = b64encode(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
    return jwk


def private_key_from_jwk(jwk: dict[str, Any]) -> ClientPrivateKey:
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        return ec.derive_private_key(_int(jwk.get("d")), ec.SECP256R1())
    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(b64decode(str(jwk.get("d"))))
    raise JoseError("only EC P-256 and Ed25519 private JWKs are supported here")
