"""Access tokens for a simulated client, obtained the way a bank's integration does.

private_key_jwt (RFC 7523) on `POST /oauth/token`, refreshed a minute before
expiry; DPoP-bound for a FAPI 2.0 client, with a fresh proof on every call.
The token traffic goes through the user's own Locust client, so it shows in
the statistics beside the calls it authorises.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import ec
from locust.contrib.fasthttp import FastHttpSession

from gateway.client import ASSERTION_TYPE, client_assertion, dpop_proof
from loadtests.scenarios.demo_state import DemoKey
from loadtests.scenarios.outcomes import fail

REFRESH_AHEAD_S = 60
_issuers: dict[str, str] = {}


def issuer(client: FastHttpSession, base_url: str) -> str:
    """The gateway's issuer from its metadata: assertions and DPoP proofs name it, and it
    need not be the URL Locust was pointed at (localhost against 127.0.0.1, a proxy)."""
    if base_url not in _issuers:
        with client.get(
            "/.well-known/oauth-authorization-server", name="metadata", catch_response=True
        ) as answer:
            if answer.status_code != 200:
                fail(answer, f"metadata: {answer.status_code}")
                return base_url.rstrip("/")
            _issuers[base_url] = str(answer.json()["issuer"]).rstrip("/")
    return _issuers[base_url]


class TokenKeeper:
    def __init__(self, client: FastHttpSession, base_url: str, key: DemoKey) -> None:
        self.client, self.key = client, key
        self.issuer = issuer(client, base_url)
        # Like gateway.client: the DPoP key lives as long as the client; tokens bind to it.
        self.dpop_key = ec.generate_private_key(ec.SECP256R1()) if key.dpop else None
        self.token: str | None = None
        self.expires_at = 0.0

    def refresh(self) -> bool:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(
                self.key.client_id, self.key.key, audience=self.issuer, kid=self.key.kid
            ),
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.dpop_key is not None:
            headers["DPoP"] = dpop_proof(self.dpop_key, "POST", f"{self.issuer}/oauth/token")
        name = "/oauth/token (DPoP)" if self.dpop_key is not None else "/oauth/token"
        with self.client.post(
            "/oauth/token", data=urlencode(form), headers=headers, name=name, catch_response=True
        ) as answer:
            if answer.status_code != 200:
                fail(answer, f"token refused: {answer.status_code} {(answer.text or '')[:200]}")
                self.token = None
                return False
            body = answer.json()
        self.token, self.expires_at = str(body["access_token"]), time.time() + body["expires_in"]
        return True

    def headers(self, method: str, path: str) -> dict[str, str]:
        """Authorization (and DPoP) for one request; a token near its end is replaced first."""
        if self.token is None or time.time() > self.expires_at - REFRESH_AHEAD_S:
            self.refresh()
        token = self.token or "unavailable"
        if self.dpop_key is None:
            return {"Authorization": f"Bearer {token}"}
        url = self.issuer + path.split("?")[0]
        return {
            "Authorization": f"DPoP {token}",
            "DPoP": dpop_proof(self.dpop_key, method, url, token),
        }

    def forget(self) -> None:
        """After a 401: the token was revoked or the key rotated; fetch a new one next time."""
        self.token = None
