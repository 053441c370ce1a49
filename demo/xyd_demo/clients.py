"""Demo clients: registered in the store, private JWKs written under .xyd/demo/clients/,
beside each one's registration (`<id>.json`: client_id, type, redirect_uris)."""

from __future__ import annotations

from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection

from gateway.identity.clients import (
    create_client,
    get_client,
    replace_keys,
    set_department,
    set_redirect_uris,
)
from gateway.keys import jose
from gateway.private_files import private_dir, write_private
from policies.departments import Departments
from xyd_demo import names

DEMO_CLIENTS = (
    # client_id, display name, type, org code, FAPI 2.0 strict
    ("demo-bank", "成都银行 (demo)", "bank", "BOCD", False),
    ("demo-bank-2", "建设银行成都分行 (demo)", "bank", "CCB-CD", False),
    ("demo-bank-fapi", "FAPI 2.0 demo bank", "bank", "FAPI-CD", True),
    ("demo-department", "成都市市场监督管理局 (demo)", "department", None, False),
    ("demo-credit-office", "成都市发展和改革委员会 (demo)", "department", None, False),
    ("demo-risk-office", "监管沙箱风险办 (demo)", "risk_office", None, False),
)

# Where the demo banks' authorisation answers go: a loopback address, as a bank's
# developer would run its callback on their own machine.
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"

# The department each demo department client delivers for (config/departments.yaml),
# with every category the configuration lets it deliver.
DEPARTMENT_OF = {"demo-department": names.MARKET, "demo-credit-office": names.CREDIT_OFFICE}

# The other banks the platforms' simulators lend through: registered (keys kept
# by nobody) so the authorisations the platforms sign for them become consents.
LENDING_BANKS = (
    ("demo-icbc-cd", "工商银行成都分行 (demo)", "ICBC-CD"),
    ("demo-boc-cd", "中国银行成都分行 (demo)", "BOC-CD"),
    ("demo-abc-cd", "农业银行成都分行 (demo)", "ABC-CD"),
    ("demo-cdrcb", "成都农商银行 (demo)", "CDRCB"),
    ("demo-cmb-cd", "招商银行成都分行 (demo)", "CMB-CD"),
)


def register_demo_clients(conn: Connection, out_dir: Path, departments: Departments) -> list[Path]:
    """Register (or re-key) every demo client; return the private JWK files written."""
    private_dir(out_dir)
    written = []
    for client_id, name, client_type, org_code, strict in DEMO_CLIENTS:
        path = out_dir / f"{client_id}.jwk"
        private = ec.generate_private_key(ec.SECP256R1())
        public = jose.public_jwk(private)
        kid = jose.thumbprint(public)
        jwks = {"keys": [{**public, "kid": kid, "use": "sig", "alg": "ES256"}]}
        department = (
            departments.find(DEPARTMENT_OF[client_id]) if client_type == "department" else None
        )
        categories = list(department.categories) if department else None
        redirect_uris = [DEMO_REDIRECT_URI] if client_type == "bank" else []
        if get_client(conn, client_id) is None:
            create_client(
                conn,
                client_id=client_id,
                display_name=name,
                client_type=client_type,
                org_code=org_code,
                jwks=jwks,
                fapi2_strict=strict,
                department=department,
                categories=categories,
                redirect_uris=redirect_uris,
            )
        else:
            replace_keys(conn, client_id, jwks)
            set_redirect_uris(conn, client_id, redirect_uris)
            if department is not None and categories is not None:
                set_department(conn, client_id, department, categories)
        secret = {
            **jose.private_jwk(private),
            "kid": kid,
            "alg": "ES256",
            "client_id": client_id,
            "dpop": strict,
        }
        write_private(path, orjson.dumps(secret, option=orjson.OPT_INDENT_2))
        written.append(path)
        registration = {"client_id": client_id, "type": client_type, "redirect_uris": redirect_uris}
        write_private(
            out_dir / f"{client_id}.json", orjson.dumps(registration, option=orjson.OPT_INDENT_2)
        )
    for client_id, name, org_code in LENDING_BANKS:
        if get_client(conn, client_id) is None:
            public = jose.public_jwk(ec.generate_private_key(ec.SECP256R1()))
            key = {**public, "kid": jose.thumbprint(public), "use": "sig", "alg": "ES256"}
            create_client(
                conn,
                client_id=client_id,
                display_name=name,
                client_type="bank",
                org_code=org_code,
                jwks={"keys": [key]},
                fapi2_strict=False,
            )
    return written
