"""The JWS rules of gateway.keys.jose, on joserfc: what is signed verifies, the
algorithm is the key's, and what the gateway refuses stays refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gateway.keys import jose

# jose.py silences joserfc's warning on the name EdDSA; pytest resets filters per test.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
ANY = frozenset({"ES256", "EdDSA", "Ed25519", "PS256"})
KEYS = {
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    "PS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_with(header_json: bytes, claims: dict[str, object], key: jose.PrivateKey) -> str:
    """A JWS over header bytes as given (the signer of a forger, not ours)."""
    signing_input = f"{b64(header_json)}.{b64(orjson.dumps(claims))}"
    return f"{signing_input}.{b64(jose.signature_of(signing_input.encode(), key))}"


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_signed_verifies_and_tampered_does_not(alg: str) -> None:
    key = KEYS[alg]
    token = jose.sign({"alg": alg, "typ": "JWT"}, {"sub": "bank-a", "iat": 1}, key)
    compact = jose.parse(token)
    jose.verify(compact, key.public_key(), ANY)
    assert compact.claims == {"sub": "bank-a", "iat": 1}
    head, _, signature = token.split(".")
    forged = f"{head}.{b64(orjson.dumps({'sub': 'bank-b', 'iat': 1}))}.{signature}"
    with pytest.raises(jose.JoseError, match="bad signature"):
        jose.verify(jose.parse(forged), key.public_key(), ANY)


def test_the_rfc_9864_name_for_ed25519_is_accepted_too() -> None:
    key = KEYS["EdDSA"]
    token = jose.sign({"alg": "Ed25519"}, {"n": 1}, key)
    jose.verify(jose.parse(token), key.public_key(), ANY)


@pytest.mark.parametrize(("alg", "other"), [("ES256", "EdDSA"), ("EdDSA", "ES256")])
def test_the_algorithm_is_the_keys(alg: str, other: str) -> None:
    token = jose.sign({"alg": other}, {"n": 1}, KEYS[alg])
    with pytest.raises(jose.JoseError, match="algorithm"):
        jose.verify(jose.parse(token), KEYS[alg].public_key(), ANY)


def test_none_and_hs256_with_the_public_key_are_refused() -> None:
    public = KEYS["ES256"].public_key()
    body = b64(orjson.dumps({"n": 1}))
    unsigned = f"{b64(orjson.dumps({'alg': 'none'}))}.{body}."
    with pytest.raises(jose.JoseError, match="algorithm"):
        jose.verify(jose.parse(unsigned), public, ANY)
    head = b64(orjson.dumps({"alg": "HS256"}))
    secret = orjson.dumps(jose.public_jwk(public))
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(jose.JoseError, match="algorithm"):
        jose.verify(jose.parse(f"{head}.{body}.{b64(mac)}"), public, ANY | {"HS256"})


@pytest.mark.parametrize(
    "member",
    [
        {"jku": "https://evil.example/jwks"},
        {"x5u": "https://evil.example/cert"},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"]},
        {"jwk": {"kty": "EC"}},
    ],
)
def test_headers_naming_keys_or_extensions_are_refused(member: dict[str, object]) -> None:
    token = jose.sign({"alg": "ES256", **member}, {"n": 1}, KEYS["ES256"])
    with pytest.raises(jose.JoseError, match=repr(next(iter(member)))):
        jose.parse(token)


def test_an_embedded_jwk_is_accepted_where_asked_for_dpop() -> None:
    key = KEYS["ES256"]
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jose.public_jwk(key)}
    compact = jose.parse(jose.sign(header, {"n": 1}, key), allow_jwk_header=True)
    assert compact.header == header


def test_a_header_member_given_twice_is_refused() -> None:
    twice = b'{"alg":"ES256","kid":"a","kid":"b"}'
    with pytest.raises(jose.JoseError, match="twice"):
        jose.parse(signed_with(twice, {"n": 1}, KEYS["ES256"]))


def test_a_known_header_skips_decoding_but_not_the_signature() -> None:
    key = KEYS["ES256"]
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jose.public_jwk(key)}
    claims = {"iat": int(time.time()), "jti": "j" * 16}
    token = jose.sign(header, claims, key)
    segment = token.partition(".")[0]
    compact = jose.parse(token, allow_jwk_header=True, decoded={segment: header})
    jose.verify(compact, key.public_key(), ANY)
    assert compact.claims == claims
    head, _, signature = token.split(".")
    forged = f"{head}.{b64(orjson.dumps({**claims, 'iat': 1}))}.{signature}"
    with pytest.raises(jose.JoseError, match="bad signature"):
        jose.verify(jose.parse(forged, decoded={segment: header}), key.public_key(), ANY)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "é.b.c", "e30.e30=.x", "e30.W10.x"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(jose.JoseError):
        jose.parse(token)


def test_oversized_tokens_are_refused() -> None:
    with pytest.raises(jose.JoseError, match="too large"):
        jose.parse("a" * (jose.MAX_TOKEN_BYTES + 1))


def test_rfc_7638_thumbprint() -> None:
    # RFC 7638, section 3.1's example key and thumbprint.
    jwk = {
        "kty": "RSA",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
            "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v"
            "-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08"
            "qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8"
            "awapJzKnqDKgw"
        ),
    }
    assert jose.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_jwks_round_trip(alg: str) -> None:
    key = KEYS[alg]
    assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
    again = jose.private_key_from_jwk(jose.private_jwk(key))
    assert jose.public_jwk(again) == jose.public_jwk(key)
    public = jose.public_key_from_jwk(jose.public_jwk(key))
    jose.verify(jose.parse(jose.sign({"alg": alg}, {"n": 1}, again)), public, ANY)


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_small_rsa_keys_and_other_curves_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (refused)
    with pytest.raises(jose.JoseError, match="2048"):
        jose.public_key_from_jwk(jose.public_jwk(small))
    with pytest.raises(jose.JoseError, match="unsupported"):
        jose.public_key_from_jwk({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"})
    with pytest.raises(jose.JoseError, match="base64url string"):
        jose.public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": 5})
