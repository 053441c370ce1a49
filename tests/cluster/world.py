"""What the cluster tests put in the cluster and send to it: a bank registered with
`xyd clients create`, an enterprise ingested with `xyd ingest`, a consent its
financing platform witnessed (the production profile takes no `direct` one), and
a bounded load from the client host that remembers every acknowledged answer."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool
from starlette.types import ASGIApp

from deploy.cluster import netns
from deploy.cluster.gateways import XYD
from deploy.cluster.topology import Cluster
from gateway.client import client_assertion
from gateway.consents import service
from gateway.consents.principal import PlatformPrincipal
from gateway.consents.schemas import ConsentIn
from gateway.keys import jose
from gateway.store.tables import audit_entries
from policies.consent import ConsentRules
from testkit.builders import MARKET, code, ndjson, registration
from testkit.clients import new_key

ARTIFACTS = (
    Path(os.environ.get("XYD_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
    / "cluster"
)


@dataclass
class Bank:
    client_id: str
    key: jose.PrivateKey
    kid: str
    credit_code: str
    consent_id: str

    def form(self, issuer: str) -> dict[str, str]:
        assertion = client_assertion(self.client_id, self.key, audience=issuer, kid=self.kid)
        return {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }


def xyd(cluster: Cluster, *args: str) -> str:
    """`xyd ARGS` on the monitor host, with the gateways' settings; its output."""
    done = cluster.run_in("mon", [str(XYD), *args], env=cluster.gateway_env("mon"))
    assert done.returncode == 0, f"xyd {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def seed_bank(cluster: Cluster, client_id: str = "bank-a", enterprise: int = 1) -> Bank:
    """A bank client `client_id` with a consent to read enterprise number `enterprise`."""
    key, kid = new_key("ec"), f"{client_id}-k1"
    jwks = cluster.root / f"{client_id}.jwks"
    jwks.write_text(json.dumps({"keys": [{**jose.public_jwk(key), "kid": kid}]}))
    xyd(cluster, "clients", "create", client_id, "--type", "bank", "--jwks", str(jwks),
        "--org-code", "BOCD")  # fmt: skip
    records = cluster.root / f"registrations-{enterprise}.ndjson"
    records.write_bytes(ndjson(registration(enterprise)))
    xyd(cluster, "ingest", str(records), "--category", "registration", "--department", MARKET)
    body = ConsentIn.model_validate({
        "credit_code": code(enterprise), "grantee": client_id, "purpose": "loan_application",
        "scopes": ["basic"], "valid_until": datetime.now(UTC) + timedelta(days=20),
        "evidence": {"document_sha256": "a" * 64, "signer": "法定代表人",
                     "channel": "kechuangtong"},
    })  # fmt: skip
    rules = ConsentRules.load(cluster.root / "config" / "consent.yaml", ["portal", "platform"])
    with netns.entered(cluster.ns("client")):
        engine = create_engine(cluster.database_url, poolclass=NullPool)
        with engine.begin() as conn:
            made = service.create(conn, PlatformPrincipal("kechuangtong"), body, rules)
    return Bank(client_id, key, kid, code(enterprise), str(made["id"]))


def seed_department(cluster: Cluster, client_id: str = "dept-market") -> Bank:
    """A department client delivering the market regulator's records (its key
    and id; the enterprise fields are unused)."""
    key, kid = new_key("ec"), f"{client_id}-k1"
    jwks = cluster.root / f"{client_id}.jwks"
    jwks.write_text(json.dumps({"keys": [{**jose.public_jwk(key), "kid": kid}]}))
    xyd(cluster, "clients", "create", client_id, "--type", "department", "--jwks", str(jwks),
        "--department", MARKET, "--categories", "penalty")  # fmt: skip
    return Bank(client_id, key, kid, "", "")


def audit_request_ids(cluster: Cluster) -> list[str]:
    with netns.entered(cluster.ns("client")):
        engine = create_engine(cluster.database_url, poolclass=NullPool)
        with engine.connect() as conn:
            return [r for (r,) in conn.execute(select(audit_entries.c.request_id))]


@contextlib.contextmanager
def served_in(cluster: Cluster, host: str, app: ASGIApp, port: int) -> Iterator[str]:
    """`app` served by uvicorn in a thread of the test's process on `host`'s address
    (its socket made inside the host's namespace, where it stays): a platform the
    gateways reach over the cluster's network, whose state the test reads and
    changes directly. Yields its base URL."""
    address = cluster.address(host)
    with netns.entered(cluster.ns(host)):
        listening = socket.create_server((address, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, f"{address}:{port} did not start serving"
            time.sleep(0.05)
        yield f"http://{address}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listening.close()


@dataclass
class Seen:
    """What the load saw: request ids of 2xx report answers, every status and
    when, the requests that got no answer at all."""

    acknowledged: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    no_answer: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # no answer, by exception
    # Refusals (4xx, 5xx) that are not application/problem+json.
    not_problem: int = 0
    # (monotonic time, status) of every answer, in order.
    timeline: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, answer: httpx.Response) -> None:
        with self.lock:
            self.statuses[answer.status_code] = self.statuses.get(answer.status_code, 0) + 1
            self.timeline.append((time.monotonic(), answer.status_code))
            media = answer.headers.get("content-type", "")
            if answer.status_code >= 400 and not media.startswith("application/problem+json"):
                self.not_problem += 1
            if answer.status_code == 200 and "/credit-report" in answer.request.url.path:
                self.acknowledged.append(answer.headers["x-request-id"])


def token(http: httpx.Client, cluster: Cluster, bank: Bank) -> str | None:
    got = http.post("/oauth/token", data=bank.form(cluster.issuer))
    return str(got.json()["access_token"]) if got.status_code == 200 else None


def _user(
    cluster: Cluster, bank: Bank, base: str, seen: Seen, stop: threading.Event, pause: float
) -> None:
    """One bank user reading the report again and again from the client host,
    `pause` seconds between two reads."""
    with netns.entered(cluster.ns("client")), httpx.Client(base_url=base, timeout=10) as http:
        bearer: str | None = None
        while not stop.is_set():
            try:
                bearer = bearer or token(http, cluster, bank)
                if bearer is None:
                    time.sleep(0.05)
                    continue
                answer = http.get(
                    f"/v1/enterprises/{bank.credit_code}/credit-report",
                    headers={"Authorization": f"Bearer {bearer}", "Consent-Id": bank.consent_id},
                )
                seen.count(answer)
                # A 503 says retry later: a moment, not at once in a tight loop.
                time.sleep(max(pause, 0.05) if answer.status_code == 503 else pause)
            except httpx.TransportError as exc:
                with seen.lock:
                    seen.no_answer += 1
                    kind = f"{type(exc).__name__}: {exc}"[:80]
                    seen.errors[kind] = seen.errors.get(kind, 0) + 1
                time.sleep(0.05)


@contextlib.contextmanager
def load(
    cluster: Cluster, bank: Bank, users: int = 4, base: str | None = None, pause: float = 0.0
) -> Iterator[Seen]:
    """`users` threads loading `base` (HAProxy) until the block ends."""
    seen, stop = Seen(), threading.Event()
    threads = [
        threading.Thread(
            target=_user,
            args=(cluster, bank, base or cluster.lb_url, seen, stop, pause),
            daemon=True,
        )
        for _ in range(users)
    ]
    for thread in threads:
        thread.start()
    try:
        yield seen
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)


def exactly_once(cluster: Cluster, seen: Seen) -> dict[str, int]:
    """lost: acknowledged answers without an audit entry; doubled: with several."""
    ids = audit_request_ids(cluster)
    counts: dict[str, int] = {}
    for request_id in ids:
        counts[request_id] = counts.get(request_id, 0) + 1
    lost = sum(1 for r in seen.acknowledged if counts.get(r, 0) == 0)
    doubled = sum(1 for r in seen.acknowledged if counts.get(r, 0) > 1)
    return {"acknowledged": len(seen.acknowledged), "lost": lost, "doubled": doubled}


def record(name: str, figures: dict[str, object]) -> None:
    """The figures printed (pytest -s) and kept in test-artifacts/cluster/NAME.json."""
    print(f"\n{name}: {json.dumps(figures)}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


def switch_time(
    timeline: list[tuple[float, int]], good: frozenset[int] = frozenset({200})
) -> float:
    """Seconds from the first 503 to the first `good` answer after it (0: none seen)."""
    first = next((at for at, status in timeline if status == 503), None)
    if first is None:
        return 0.0
    back = next((at for at, status in timeline if at > first and status in good), None)
    assert back is not None, "no good answer after the first 503"
    return back - first
