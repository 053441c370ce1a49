"""A Chuangfu Tianfu (创富天府) simulator: its ES256 keys, signed envelopes, a sender, a JWKS.

`Simulator` holds the platform's signing keys (generated here; `add_key`
rotates to a new kid), builds and signs message envelopes as spec v3 has them,
and generates a realistic deterministic stream (`stream`). `Sender` posts
envelopes to a gateway and verifies its signed acknowledgements against the
gateway's JWKS, as the platform does. `jwks_app` serves the platform's JWKS
(for a gateway configured with `jwks_url`) and counts fetches.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.identifiers import CREDIT_ALPHABET, make_credit_code
from gateway.identity import jose
from gateway.loans.events import BEIJING
from gateway.private_files import private_dir, write_private
from xyd_demo.simulators import Borrowers, pick

KID = "cftf-2026-1"
PATH = "/v1/platforms/chuangfu-tianfu/messages"
JOSE_MEDIA_TYPE = "application/jose"
BANKS = ("ICBC-CD", "CCB-CD", "BOC-CD", "ABC-CD", "CDRCB", "BOCD", "CMB-CD")
_NAMES = ("文化传媒", "软件科技", "餐饮管理", "农业发展", "精密制造", "物流", "生物医药")
_DISTRICTS = ("510104", "510105", "510107", "510108", "510112", "510116")
Expect = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery: the compact JWS as posted, and what the gateway should answer."""

    token: str
    msg_id: str | None
    msg_type: str
    expect: Expect


class Simulator:
    def __init__(
        self,
        *,
        seed: int = 2026,
        kid: str = KID,
        key: ec.EllipticCurvePrivateKey | None = None,
        clock: Callable[[], float] = time.time,
        borrowers: Borrowers = (),
    ) -> None:
        self.borrowers = borrowers
        self.rng = random.Random(seed)
        self.clock = clock
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.kid = self.add_key(kid, key)
        self.jwks_fetches = 0
        self._serial = itertools.count(1)

    @classmethod
    def from_private_jwk(cls, path: Path, **kwargs: Any) -> Simulator:
        """The demo's platform, signing with the key `write_demo_credentials` wrote."""
        jwk = json.loads(path.read_text(encoding="utf-8"))
        key = jose.private_key_from_jwk(jwk)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(kid=jwk["kid"], key=key, **kwargs)

    def add_key(self, kid: str, key: ec.EllipticCurvePrivateKey | None = None) -> str:
        """Publish a new key and sign with it from now on (a key rotation)."""
        self.keys[kid] = key or ec.generate_private_key(ec.SECP256R1())
        self.kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**jose.public_jwk(key), "kid": kid, "use": "sig", "alg": "ES256"}
                for kid, key in self.keys.items()
            ]
        }

    def private_jwk(self) -> dict[str, Any]:
        return {**jose.private_jwk(self.keys[self.kid]), "kid": self.kid, "alg": "ES256"}

    # --- envelopes ----------------------------------------------------------------

    def next_msg_id(self) -> str:
        day = datetime.fromtimestamp(self.clock(), BEIJING).strftime("%Y%m%d")
        return f"CFTF-{day}-{next(self._serial):06d}"

    def envelope(
        self,
        msg_type: str,
        body: dict[str, Any],
        *,
        msg_id: str | None = None,
        sent_at: datetime | None = None,
    ) -> dict[str, Any]:
        sent = sent_at or datetime.fromtimestamp(self.clock(), BEIJING).replace(microsecond=0)
        return {
            "header": {
                "msg_id": msg_id or self.next_msg_id(),
                "msg_type": msg_type,
                "sent_at": sent.isoformat(),
                "version": "3.0",
            },
            "body": body,
        }

    def sign(
        self,
        payload: dict[str, Any] | bytes,
        *,
        kid: str | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        """A compact JWS of the payload; `header` adds or overrides protected members."""
        kid = kid or self.kid
        protected = {"alg": "ES256", "kid": kid, "typ": "JOSE", **(header or {})}
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return jose.sign_bytes(protected, data, self.keys[kid])

    def message(self, msg_type: str, body: dict[str, Any], **envelope: Any) -> str:
        return self.sign(self.envelope(msg_type, body, **envelope))

    # --- a realistic stream ----------------------------------------------------------

    def credit_code(self) -> str:
        body = "MA" + "".join(self.rng.choice(CREDIT_ALPHABET) for _ in range(6))
        return make_credit_code("9", "1", self.rng.choice(_DISTRICTS), body)

    def loan_bodies(self, loan: int) -> list[tuple[str, dict[str, Any]]]:
        """One SME's way through the platform: applied … settled, defaulted or refused."""
        rng = self.rng
        bank = rng.choice(BANKS)
        wan = rng.choice((30, 50, 80, 100, 150, 200, 300))
        code, name = self.credit_code(), f"成都{rng.choice(_NAMES)}有限公司{loan:04d}"
        if self.borrowers:
            code, name = pick(self.borrowers, loan - 1)
        base = {
            "unified_credit_code": code,
            "company_name": name,
            "loan_no": f"CFTF-LN-{loan:07d}",
            "bank_code": bank,
            "amount_wan": f"{wan}.00",
            "term_months": rng.choice((6, 12, 24, 36)),
        }
        until = (date.today() + timedelta(days=180)).isoformat()
        authorization = {"bank_code": bank, "scopes": ["basic", "licenses"], "valid_until": until}
        steps: list[tuple[str, dict[str, Any]]] = [
            ("loan.applied", base),
            ("loan.authorized", {**base, "authorization": authorization}),
        ]
        if rng.random() < 0.2:
            return [*steps, ("loan.rejected", base)]
        steps += [("loan.approved", base), ("loan.disbursed", base)]
        instalment = str((Decimal(wan) / 4).quantize(Decimal("0.000001")))
        due = date.today() - timedelta(days=rng.randint(1, 90))
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.25:
                late = {**base, "amount_wan": instalment, "due_date": due.isoformat()}
                steps.append(("repayment.overdue", {**late, "days_overdue": rng.randint(1, 90)}))
            steps.append(("repayment.received", {**base, "amount_wan": instalment}))
        ending = rng.random()
        if ending < 0.1:
            steps.append(("loan.defaulted", base))
        elif ending < 0.6:
            steps.append(("loan.settled", base))
        return steps

    def malformed(self) -> tuple[str, dict[str, Any]]:
        """A signed message the gateway must reject: a defect the platform really ships."""
        body = {
            "unified_credit_code": self.credit_code(),
            "loan_no": f"CFTF-LN-X{next(self._serial):06d}",
            "bank_code": self.rng.choice(BANKS),
            "amount_wan": "10.00",
        }
        defect = self.rng.randrange(4)
        if defect == 0:
            code = body["unified_credit_code"]
            body["unified_credit_code"] = code[:17] + ("0" if code[17] != "0" else "1")
        elif defect == 1:
            body["amount_wan"] = "10.1234567"
        elif defect == 2:
            return "loan.restructured", body
        else:
            del body["loan_no"]
        return "loan.disbursed", body

    def stream(
        self, loans: int, *, duplicates: float = 0.05, malformed: float = 0.15
    ) -> Iterator[Message]:
        """`loans` lifecycles; a `duplicates` share of messages redelivered, and a
        `malformed` chance per loan of a defective message. Deterministic for a
        seed; signed as it is consumed, so `sent_at` stays current."""
        sent: list[Message] = []
        for loan in range(1, loans + 1):
            for msg_type, body in self.loan_bodies(loan):
                msg_id = self.next_msg_id()
                message = Message(
                    self.message(msg_type, body, msg_id=msg_id), msg_id, msg_type, "accepted"
                )
                sent.append(message)
                yield message
                if self.rng.random() < duplicates:
                    earlier = self.rng.choice(sent)
                    yield Message(earlier.token, earlier.msg_id, earlier.msg_type, "duplicate")
            if self.rng.random() < malformed:
                msg_type, body = self.malformed()
                msg_id = self.next_msg_id()
                token = self.message(msg_type, body, msg_id=msg_id)
                yield Message(token, msg_id, msg_type, "rejected")

    # --- the platform's JWKS endpoint ----------------------------------------------------

    def jwks_app(self) -> Starlette:
        """Serves `/jwks.json` (counted), `/moved` (a redirect to it) and `/healthz`."""

        async def jwks(request: Request) -> Response:
            self.jwks_fetches += 1
            return JSONResponse(self.jwks())

        async def moved(request: Request) -> Response:
            return RedirectResponse("/jwks.json", status_code=302)

        async def healthz(request: Request) -> Response:
            return PlainTextResponse("ok")

        return Starlette(
            routes=[Route("/jwks.json", jwks), Route("/moved", moved), Route("/healthz", healthz)]
        )


class Sender:
    """Posts signed envelopes to a gateway and checks its acknowledgements, as the platform does."""

    def __init__(self, base_url: str, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.Client(timeout=httpx.Timeout(10.0), trust_env=False)
        self._gateway_keys: dict[str, jose.PublicKey] = {}

    def post(self, token: str | bytes, *, content_type: str = JOSE_MEDIA_TYPE) -> httpx.Response:
        data = token.encode("ascii") if isinstance(token, str) else token
        return self.client.post(
            self.base_url + PATH, content=data, headers={"Content-Type": content_type}
        )

    def ack(self, response: httpx.Response) -> dict[str, Any]:
        """The verified acknowledgement payload; JoseError if the gateway did not sign it."""
        if response.headers.get("content-type", "").split(";")[0] != JOSE_MEDIA_TYPE:
            raise jose.JoseError(f"not a signed acknowledgement (HTTP {response.status_code})")
        compact = jose.parse(response.text)
        kid = compact.header.get("kid")
        if kid not in self._gateway_keys:
            jwks = self.client.get(self.base_url + "/.well-known/jwks.json").json()
            self._gateway_keys = {k["kid"]: jose.public_key_from_jwk(k) for k in jwks["keys"]}
        key = self._gateway_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise jose.JoseError(f"acknowledgement signed with unknown kid {kid!r}")
        jose.verify(compact, key, frozenset({"ES256"}))
        return compact.claims

    def close(self) -> None:
        self.client.close()


def write_demo_credentials(directory: Path) -> None:
    """`private.jwk` (the platform's signing key, for the demo sender) and `jwks.json`."""
    simulator = Simulator()
    private_dir(directory)
    write_private(directory / "private.jwk", json.dumps(simulator.private_jwk(), indent=2))
    write_private(directory / "jwks.json", json.dumps(simulator.jwks(), indent=2))
