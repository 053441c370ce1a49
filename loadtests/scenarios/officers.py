"""Risk officers: the alert list with the dashboard's filters, an alert's evidence,
and now and then the live stream for a few seconds."""

from __future__ import annotations

import random
import time

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from loadtests.scenarios.auth import TokenKeeper
from loadtests.scenarios.demo_state import demo_state
from loadtests.scenarios.outcomes import settle
from loadtests.scenarios.sse import hold

FILTERS = ("", "status=open", "severity=high", "status=open&severity=critical",
           "status=acknowledged", "rule=multi_lending")  # fmt: skip
STREAM = "/v1/alerts/stream"
STREAM_HOLD_S = 3.0


class RiskOfficer(FastHttpUser):
    weight = 1
    wait_time = between(2.0, 5.0)

    def on_start(self) -> None:
        state = demo_state()
        self.keeper = TokenKeeper(self.client, self.host or "", state.client("demo-risk-office"))
        self.seen: list[str] = []

    @task(5)
    def list_alerts(self) -> None:
        query = random.choice(FILTERS)
        path = "/v1/alerts?limit=50" + (f"&{query}" if query else "")
        with self.client.get(
            path,
            headers=self.keeper.headers("GET", path),
            name="/v1/alerts?[filters]",
            catch_response=True,
        ) as answer:
            if settle(answer, {200, 429}) == 200:
                items = answer.json().get("items") or []
                self.seen = [str(item["id"]) for item in items][:20] or self.seen

    @task(2)
    def alert_evidence(self) -> None:
        if not self.seen:
            return
        path = f"/v1/alerts/{random.choice(self.seen)}"
        with self.client.get(
            path, headers=self.keeper.headers("GET", path), name="/v1/alerts/[id]",
            catch_response=True,
        ) as answer:  # fmt: skip
            settle(answer, {200, 429})

    @task(1)
    def watch_stream(self) -> None:
        started = time.time()
        error: Exception | None = None
        try:
            held = hold(self.host or "", STREAM, self.keeper.headers("GET", STREAM), STREAM_HOLD_S)
            if held.status != 200:
                error = RuntimeError(f"stream answered {held.status}")
            elapsed, size = held.first_byte_ms, held.received
        except OSError as exc:
            error, elapsed, size = exc, (time.time() - started) * 1000, 0
        self.environment.events.request.fire(
            request_type="SSE",
            name=f"{STREAM} (held {STREAM_HOLD_S:.0f} s; time to first byte)",
            response_time=elapsed,
            response_length=size,
            exception=error,
            context={},
            start_time=started,
            url=STREAM,
        )
