"""The two JWS calls made on every request, on `cryptography` directly.

joserfc costs these measurably more than the signature itself (its header
checks, key lookups and JWK bookkeeping on each call; docs/performance.md,
"JOSE", has the numbers), so they bypass it:

- `verify`: a DPoP proof whose header was decoded and checked before (the
  same client key signs every proof), verified on each request;
- `sign`: a credit report's signature over the signing input
  reports/signing.py assembles from members serialised once.

Both take what jose.py already vetted (the algorithm fixed by the key's type)
and do nothing else. To remove a bypass, call joserfc as jose.py does
elsewhere (`jws.validate_compact`, the registry's algorithm `sign`).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

_ES256 = ec.ECDSA(hashes.SHA256())
_PSS = padding.PSS(padding.MGF1(hashes.SHA256()), hashes.SHA256().digest_size)

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def verify(signing_input: bytes, signature: bytes, key: PublicKey) -> bool:
    """Whether `signature` (raw r||s for ES256) is `key`'s over `signing_input`."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                return False
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, _ES256)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signing_input)
        else:
            key.verify(signature, signing_input, _PSS, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def sign(signing_input: bytes, key: PrivateKey) -> bytes:
    """The JWS signature (raw r||s for ES256) over a JWS signing input."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, _ES256))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(signing_input)
    return key.sign(signing_input, _PSS, hashes.SHA256())
