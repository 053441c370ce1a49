"""The requests the benchmark replays: the same few credit reports, as each caller sends them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx

from gateway.client import ASSERTION_TYPE, GatewayClient
from loadtests.consent_body import consent_body
from loadtests.proofs import client_assertions, dpop_proofs
from loadtests.wrkrun import Request

# One enterprise of each of these demo profiles: reports of different sizes and sections.
PROFILES = ("black_listed", "penalised", "repaired", "clean")
ACCEPT = {"Accept": "application/json"}


def report_path(code: str) -> str:
    return f"/v1/enterprises/{code}/credit-report"


def choose_enterprises(samples: Path, profiles: tuple[str, ...] = PROFILES) -> list[str]:
    with samples.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [next(r["credit_code"] for r in rows if r["profile"] == p) for p in profiles]


@dataclass
class Caller:
    """A demo bank with a consent for each benchmark enterprise."""

    client: GatewayClient
    consents: dict[str, str]

    @classmethod
    def connect(cls, base_url: str, key_file: Path, codes: list[str]) -> Caller:
        client = GatewayClient.from_jwk_file(base_url, key_file)
        consents = {}
        for code in codes:
            answer = client.request(
                "POST", "/v1/consents", content=consent_body(code, client.client_id),
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            if answer.status_code != 201:
                raise RuntimeError(f"consent for {code}: {answer.status_code} {answer.text}")
            consents[code] = str(answer.json()["id"])
        return cls(client, consents)

    def fetch(self, code: str, proof: str | None = None) -> httpx.Response:
        """One report the way the load generator will ask for it."""
        headers = {**ACCEPT, "Consent-Id": self.consents[code]}
        if proof is None:
            return self.client.request("GET", report_path(code), headers=headers)
        token = self.client.token()
        headers |= {"Authorization": f"DPoP {token}", "DPoP": proof}
        return self.client.http.get(report_path(code), headers=headers)


def bare_requests(codes: list[str]) -> list[Request]:
    return [Request("GET", report_path(code), ACCEPT) for code in codes]


def bearer_requests(bank: Caller) -> list[Request]:
    token = bank.client.token()  # a fresh one when the last is within a minute of expiry
    return [
        Request("GET", report_path(code),
                {**ACCEPT, "Authorization": f"Bearer {token}", "Consent-Id": consent})
        for code, consent in bank.consents.items()
    ]  # fmt: skip


def dpop_requests(bank: Caller, count: int) -> list[Request]:
    """`count` requests, each with its own proof, taking the enterprises in turn."""
    key = bank.client.dpop_key
    if key is None:
        raise ValueError(f"{bank.client.client_id} is not a DPoP client")
    token = bank.client.token()
    per_code = -(-count // len(bank.consents))
    streams = [
        [
            Request("GET", report_path(code),
                    {**ACCEPT, "Authorization": f"DPoP {token}", "DPoP": proof,
                     "Consent-Id": consent})
            for proof in dpop_proofs(key, "GET", bank.client.issuer + report_path(code),
                                     token, per_code)
        ]
        for code, consent in bank.consents.items()
    ]  # fmt: skip
    return [request for group in zip(*streams, strict=True) for request in group][:count]


def token_requests(client: GatewayClient, count: int) -> list[Request]:
    headers = {"Content-Type": "application/x-www-form-urlencoded", **ACCEPT}
    return [
        Request("POST", "/oauth/token", headers, urlencode({
            "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }))
        for assertion in client_assertions(
            client.client_id, client.key, client.issuer, count, kid=client.kid
        )
    ]  # fmt: skip
