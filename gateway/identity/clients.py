"""The client registry: banks, platforms, departments, risk office, regulator.

All SQL here runs on a sync `Connection`; the HTTP app calls it through
`AsyncConnection.run_sync`, the CLI directly, so there is one copy of it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import orjson
from sqlalchemy import Connection

from gateway.errors import Conflict, InvalidValue, NotFound
from gateway.identity import repository
from gateway.identity.redirects import check_redirect_uris
from gateway.keys import jose
from policies.departments import Department

ClientType = Literal["bank", "platform", "department", "risk_office", "regulator"]
SCOPES = (
    "reports:read",
    "consents:write",
    "records:write",
    "alerts:read",
    "alerts:write",
    "loans:read",
    "audit:read",
    "repairs:review",
)
DEFAULT_SCOPES: dict[str, tuple[str, ...]] = {
    "bank": ("reports:read", "consents:write"),
    # records:write lets a platform open disputes for an enterprise; only
    # departments may deliver records (the records route checks the type).
    "platform": ("consents:write", "records:write"),
    # repairs:review: a department decides credit repairs of the penalties it decided.
    "department": ("records:write", "repairs:review"),
    "risk_office": ("alerts:read", "alerts:write", "loans:read", "audit:read"),
    "regulator": ("loans:read", "audit:read"),
}
_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class UnknownClient(NotFound):
    type_slug, title = "unknown-client", "No such client"


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    display_name: str
    client_type: str
    org_code: str | None
    scopes: frozenset[str]
    rate_plan: str
    jwks: dict[str, Any]
    fapi2_strict: bool
    disabled: bool
    secret_hash: str | None = None
    # A department client's department and the categories it delivers.
    department: str | None = None
    department_code: str | None = None
    categories: frozenset[str] = frozenset()
    # Where its authorisation answers may go (the code flow), matched exactly.
    redirect_uris: tuple[str, ...] = ()

    def public_keys(self) -> list[tuple[str | None, jose.PublicKey]]:
        keys = []
        for jwk in self.jwks.get("keys", []):
            keys.append((jwk.get("kid"), jose.public_key_from_jwk(jwk)))
        return keys


def _row_to_client(row: Any) -> Client:
    return Client(
        client_id=row.client_id,
        display_name=row.display_name,
        client_type=row.client_type,
        org_code=row.org_code,
        scopes=frozenset(row.scopes),
        rate_plan=row.rate_plan,
        jwks=dict(row.jwks),
        fapi2_strict=bool(row.fapi2_strict),
        disabled=row.disabled_at is not None,
        secret_hash=row.secret_hash,
        department=row.department,
        department_code=row.department_code,
        categories=frozenset(row.categories or ()),
        redirect_uris=tuple(row.redirect_uris or ()),
    )


def get_client(conn: Connection, client_id: str) -> Client | None:
    row = repository.client_row(conn, client_id)
    return _row_to_client(row) if row is not None else None


def list_clients(conn: Connection) -> list[Client]:
    return [_row_to_client(row) for row in repository.client_rows(conn)]


def validate_jwks(jwks: Any) -> dict[str, Any]:
    """A JWKS of public keys, each importable and with a unique kid."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise InvalidValue('jwks: expected {"keys": [...]} with at least one key')
    seen: set[str] = set()
    cleaned = []
    for jwk in jwks["keys"]:
        if not isinstance(jwk, dict):
            raise InvalidValue("jwks: every key must be a JSON object")
        if any(private in jwk for private in ("d", "p", "q", "dp", "dq", "qi")):
            raise InvalidValue("jwks: contains private key material; register public keys only")
        try:
            jose.public_key_from_jwk(jwk)
        except jose.JoseError as exc:
            raise InvalidValue(f"jwks: {exc}") from None
        kid = jwk.get("kid") or jose.thumbprint(jwk)
        if kid in seen:
            raise InvalidValue(f"jwks: duplicate kid {kid!r}")
        seen.add(kid)
        cleaned.append({**jwk, "kid": kid})
    return {"keys": cleaned}


def load_jwks(source: str) -> dict[str, Any]:
    """Inline JSON, or a path to a JWKS (or single JWK) file."""
    text = source if source.lstrip().startswith("{") else Path(source).read_text()
    value = orjson.loads(text)
    if isinstance(value, dict) and "kty" in value:
        value = {"keys": [value]}
    return validate_jwks(value)


def create_client(
    conn: Connection,
    *,
    client_id: str,
    display_name: str,
    client_type: str,
    jwks: dict[str, Any],
    org_code: str | None = None,
    scopes: list[str] | None = None,
    rate_plan: str = "standard",
    fapi2_strict: bool = False,
    department: Department | None = None,
    categories: list[str] | None = None,
    redirect_uris: list[str] | None = None,
) -> Client:
    """Register a client. A department client is registered for its `department`
    (from config/departments.yaml) and the `categories` it delivers, a subset of
    those the department may deliver; no other client has either."""
    if not _CLIENT_ID.match(client_id):
        raise InvalidValue("client_id: 2-64 characters of a-z, 0-9, '.', '_' or '-'")
    if client_type not in get_args(ClientType):
        raise InvalidValue(f"client_type: expected one of {', '.join(get_args(ClientType))}")
    delivers = _delivers(client_type, department, categories)
    chosen = list(scopes) if scopes else list(DEFAULT_SCOPES[client_type])
    unknown = sorted(set(chosen) - set(SCOPES))
    if unknown:
        raise InvalidValue(f"scopes: unknown {', '.join(unknown)}")
    now = datetime.now(UTC)
    row = {
        "client_id": client_id,
        "display_name": display_name,
        "client_type": client_type,
        "org_code": org_code,
        "scopes": sorted(set(chosen)),
        "rate_plan": rate_plan,
        "jwks": validate_jwks(jwks),
        "fapi2_strict": fapi2_strict,
        "department": department.name if department else None,
        "department_code": department.code if department else None,
        "categories": delivers,
        "redirect_uris": check_redirect_uris(redirect_uris) if redirect_uris else None,
        "created_at": now,
        "updated_at": now,
    }
    if not repository.insert_client(conn, row):
        raise Conflict(f"client {client_id!r} already exists")
    client = get_client(conn, client_id)
    assert client is not None
    return client


def _delivers(
    client_type: str, department: Department | None, categories: list[str] | None
) -> list[str] | None:
    if client_type != "department":
        if department is not None or categories:
            raise InvalidValue("department, categories: only a department client has them")
        return None
    if department is None:
        raise InvalidValue("department: a department client is registered for its department")
    chosen = sorted(set(categories or ()))
    if not chosen:
        raise InvalidValue("categories: name the record categories this client delivers")
    beyond = sorted(set(chosen) - set(department.categories))
    if beyond:
        raise InvalidValue(
            f"categories: {department.name} may not deliver {', '.join(beyond)} "
            f"(config/departments.yaml: {', '.join(department.categories)})"
        )
    return chosen


_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def secret_matches(stored: str | None, given: str) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt, _ = stored.split("$")
    return hmac.compare_digest(stored, hash_secret(given, bytes.fromhex(salt)))


def set_secret(conn: Connection, client_id: str) -> str:
    """Give a client a new secret; return it (shown once, stored only as a hash)."""
    secret = secrets.token_urlsafe(32)
    _update(conn, client_id, secret_hash=hash_secret(secret))
    return secret


def set_disabled(conn: Connection, client_id: str, disabled: bool) -> None:
    _update(conn, client_id, disabled_at=datetime.now(UTC) if disabled else None)


def set_department(
    conn: Connection, client_id: str, department: Department, categories: list[str]
) -> None:
    """Bind a department client (one registered before clients had departments, or
    moving) to `department`, delivering `categories`; from its next batch on."""
    client = get_client(conn, client_id)
    if client is None:
        raise UnknownClient(f"no client {client_id!r}")
    delivers = _delivers(client.client_type, department, categories)
    _update(
        conn,
        client_id,
        department=department.name,
        department_code=department.code,
        categories=delivers,
    )


def set_redirect_uris(conn: Connection, client_id: str, uris: list[str]) -> None:
    _update(conn, client_id, redirect_uris=check_redirect_uris(uris) if uris else None)


def replace_keys(conn: Connection, client_id: str, jwks: dict[str, Any]) -> None:
    _update(conn, client_id, jwks=validate_jwks(jwks))


def _update(conn: Connection, client_id: str, **values: Any) -> None:
    if not repository.update_client(conn, client_id, values):
        raise UnknownClient(f"no client {client_id!r}")


def add_key(conn: Connection, client_id: str, jwk: dict[str, Any]) -> None:
    client = get_client(conn, client_id)
    if client is None:
        raise UnknownClient(f"no client {client_id!r}")
    replace_keys(conn, client_id, {"keys": [*client.jwks["keys"], jwk]})


def remove_key(conn: Connection, client_id: str, kid: str) -> None:
    client = get_client(conn, client_id)
    if client is None:
        raise UnknownClient(f"no client {client_id!r}")
    kept = [k for k in client.jwks["keys"] if k.get("kid") != kid]
    if len(kept) == len(client.jwks["keys"]):
        raise NotFound(f"client {client_id!r} has no key {kid!r}")
    if not kept:
        raise Conflict("a client keeps at least one key; add the new key first")
    replace_keys(conn, client_id, {"keys": kept})
