"""Banks: consents registered at start, then credit reports under them.

Most fetches carry a live consent (200, or 429 once a limit is reached);
some carry none or another enterprise's (403: the gateway must refuse and
audit them). One bank (demo-bank-2) runs a batch job that now and then
bursts past its rate plan: 429 with Retry-After, which it then honours, and
its other users see 429s for a moment too, as they would.
"""

from __future__ import annotations

import random
import time

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from loadtests.consent_body import consent_body
from loadtests.scenarios.auth import TokenKeeper
from loadtests.scenarios.demo_state import demo_state
from loadtests.scenarios.outcomes import post_bytes, retry_after, settle

REPORT = "/v1/enterprises/[code]/credit-report"
BURST_CAP = 100  # requests; a plan's burst is 40 by default, so a burst ends in a 429


class Bank(FastHttpUser):
    abstract = True
    client_id = "demo-bank"
    consents_per_user = 3
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        state = demo_state()
        self.keeper = TokenKeeper(self.client, self.host or "", state.client(self.client_id))
        self.codes = random.sample(state.credit_codes, min(8, len(state.credit_codes)))
        self.consents: dict[str, str] = {}
        for code in self.codes[: self.consents_per_user]:
            self.register_consent(code)

    def register_consent(self, code: str, attempts: int = 3) -> None:
        for _ in range(attempts):
            headers = {**self.keeper.headers("POST", "/v1/consents"),
                       "Content-Type": "application/json"}  # fmt: skip
            body = consent_body(code, self.client_id)
            with post_bytes(self.client, "/v1/consents", body, headers=headers) as answer:
                status = settle(answer, {201, 429})
                if status == 201:
                    self.consents[code] = str(answer.json()["id"])
                    return
                if status != 429:
                    return
                pause = retry_after(answer)
            # Locust patches time.sleep into a cooperative gevent sleep.
            time.sleep(pause)

    def fetch_report(
        self, code: str, consent_id: str | None, expected: set[int], label: str = REPORT
    ) -> int:
        path = f"/v1/enterprises/{code}/credit-report"
        headers = self.keeper.headers("GET", path)
        if consent_id is not None:
            headers["Consent-Id"] = consent_id
        with self.client.get(path, headers=headers, name=label, catch_response=True) as answer:
            status = settle(answer, expected)
        if status == 401:
            self.keeper.forget()
        return status

    @task(24)
    def report_under_consent(self) -> None:
        if not self.consents:
            self.register_consent(random.choice(self.codes))
            return
        code, consent_id = random.choice(list(self.consents.items()))
        self.fetch_report(code, consent_id, {200, 429})

    @task(3)
    def report_without_consent(self) -> None:
        code = random.choice(self.codes)
        others = [cid for other, cid in self.consents.items() if other != code]
        # Half send nothing; half send a consent the enterprise did not give this bank.
        consent_id = random.choice(others) if others and random.random() < 0.5 else None
        self.fetch_report(code, consent_id, {403, 429}, f"{REPORT} (no consent)")

    @task(1)
    def refresh_token(self) -> None:
        """Banks run many instances, each fetching its own tokens: keep the endpoint busy."""
        self.keeper.refresh()


class DemoBank(Bank):
    weight = 3
    client_id = "demo-bank"


class DemoBank2(Bank):
    weight = 2
    client_id = "demo-bank-2"

    @task(1)
    def burst(self) -> None:
        """A batch job gone wild: back to back until refused, then wait as told."""
        code = random.choice(self.codes)
        path = f"/v1/enterprises/{code}"
        for _ in range(BURST_CAP):
            with self.client.get(
                path,
                headers=self.keeper.headers("GET", path),
                name="/v1/enterprises/[code] (burst)",
                catch_response=True,
            ) as answer:
                status = settle(answer, {200, 429})
                pause = retry_after(answer) if status == 429 else 0.0
            if status != 200:
                time.sleep(pause)
                return


class FapiBank(Bank):
    """FAPI 2.0 strict: DPoP-bound tokens and a fresh proof on every call."""

    weight = 1
    client_id = "demo-bank-fapi"
