"""The engines' faults under a bounded load from the client host, through HAProxy:

- the PostgreSQL primary's host killed whole (Patroni and PostgreSQL at once):
  Patroni promotes the synchronous standby once the leader key expires; the
  gateways answer 503 problems meanwhile (HAProxy's own page too, when both
  gateways are out); every acknowledged report keeps exactly one audit entry and
  every acknowledged record line is stored once, on the new primary; the chain
  verifies. The killed host is started again and rejoins as the standby (not
  needed for writes: synchronous mode is not strict, see deploy/cluster/engines.py).
- the Redis master's server killed: Sentinel promotes a replica; the limiter
  fails closed meanwhile, a client on a small daily plan gets no more 2xx than it
  allows across the switch, and client assertions spent before stay refused.

In this order: the PostgreSQL test leaves both database hosts up; the Redis one
leaves its killed master down (nothing after it needs it).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from deploy.cluster import lifecycle, netns
from deploy.cluster.gateways import QUOTA_CLIENT, TINY_PLAN
from deploy.cluster.topology import PG_HOSTS, REDIS_HOSTS, Cluster
from gateway.store.tables import audit_entries, record_versions, records
from testkit.builders import MARKET, ndjson, penalty
from tests.cluster.world import (
    Bank,
    Seen,
    exactly_once,
    load,
    record,
    seed_bank,
    seed_department,
    switch_time,
    token,
    xyd,
)

REPORT_ROUTE = "GET /v1/enterprises/{credit_code}/credit-report"
LINES_PER_POST = 5
_numbers = itertools.count(100_000)


@dataclass
class Written:
    """What the department's writers saw: the record ids of acknowledged lines."""

    seen: Seen = field(default_factory=Seen)
    acknowledged: list[str] = field(default_factory=list)


def _writer(cluster: Cluster, dept: Bank, written: Written, stop: threading.Event) -> None:
    """Batches of new penalty lines, one POST after another; a line counts as
    acknowledged when its POST answered 200 and the line `accepted`."""
    with (
        netns.entered(cluster.ns("client")),
        httpx.Client(base_url=cluster.lb_url, timeout=10) as http,
    ):
        bearer: str | None = None
        while not stop.is_set():
            try:
                bearer = bearer or token(http, cluster, dept)
                if bearer is None:
                    time.sleep(0.05)
                    continue
                rows = [penalty(next(_numbers) % 10**6) for _ in range(LINES_PER_POST)]
                answer = http.post(
                    "/v1/records/penalty",
                    content=ndjson(*rows),
                    headers={
                        "Authorization": f"Bearer {bearer}",
                        "Content-Type": "application/x-ndjson",
                    },
                )
                written.seen.count(answer)
                if answer.status_code == 503:
                    time.sleep(0.05)
                if answer.status_code == 200:
                    accepted = [
                        r["record_id"]
                        for r in answer.json()["results"]
                        if r["outcome"] == "accepted"
                    ]
                    with written.seen.lock:
                        written.acknowledged.extend(accepted)
            except httpx.TransportError:
                with written.seen.lock:
                    written.seen.no_answer += 1
                time.sleep(0.05)


@contextmanager
def writing(cluster: Cluster, dept: Bank, writers: int = 2) -> Iterator[Written]:
    written, stop = Written(), threading.Event()
    threads = [
        threading.Thread(target=_writer, args=(cluster, dept, written, stop), daemon=True)
        for _ in range(writers)
    ]
    for thread in threads:
        thread.start()
    try:
        yield written
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)


def _stored(cluster: Cluster, record_ids: list[str]) -> dict[str, int]:
    """lost: acknowledged lines not stored; doubled: stored in several rows or versions."""
    with netns.entered(cluster.ns("client")):
        engine = create_engine(cluster.database_url, poolclass=NullPool)
        with engine.connect() as conn:
            rows = conn.execute(
                select(records.c.source_record_id, func.count(record_versions.c.version))
                .join(record_versions, record_versions.c.record_id == records.c.id)
                .where(records.c.category == "penalty", records.c.source_department == MARKET)
                .group_by(records.c.id, records.c.source_record_id)
            ).all()
        engine.dispose()
    counts: dict[str, int] = {}
    for record_id, versions in rows:
        counts[record_id] = counts.get(record_id, 0) + int(versions)
    lost = sum(1 for r in record_ids if counts.get(r, 0) == 0)
    doubled = sum(1 for r in record_ids if counts.get(r, 0) > 1)
    return {"lines_acknowledged": len(record_ids), "lines_lost": lost, "lines_doubled": doubled}


def _until(what: str, probe: Callable[[], bool], within: float) -> float:
    start = time.monotonic()
    while not probe():
        assert time.monotonic() - start < within, f"{what}: not within {within} s"
        time.sleep(0.1)
    return time.monotonic() - start


def _synchronous(cluster: Cluster, host: str) -> bool:
    with netns.entered(cluster.ns("client")):
        url = f"http://{cluster.address(host)}:8008/sync"
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


def _verify(cluster: Cluster) -> list[str]:
    """`xyd audit verify` on the monitor host: against the store with the audit
    keys pinned there, then against each host's witness file that exists."""
    xyd(cluster, "audit", "pin-keys")
    said = [xyd(cluster, "audit", "verify").strip()]
    for host in ("gw1", "gw2", "mon"):
        witness = cluster.root / host / "state" / "audit-witness.jsonl"
        if witness.exists():
            said.append(f"{host}: " + xyd(cluster, "audit", "verify", "--witness", str(witness)))
    return [line.strip() for line in said]


def test_the_postgresql_primary_killed_loses_no_acknowledged_write(cluster: Cluster) -> None:
    bank = seed_bank(cluster)
    dept = seed_department(cluster)
    old = cluster.primary_pg()
    assert old is not None
    new = next(h for h in PG_HOSTS if h != old)
    with load(cluster, bank, users=3) as seen, writing(cluster, dept) as written:
        time.sleep(2.0)
        before = len(seen.acknowledged), len(written.acknowledged)
        killed = cluster.kill_host(old)
        promoted = _until("the standby promoted", lambda: cluster.primary_pg() == new, 40)
        resumed = _until("a report answered again", lambda: seen.timeline[-1][1] == 200, 20)
        time.sleep(2.0)
    lifecycle.start_pg(cluster, old)
    rejoined = _until("the old primary in sync", lambda: _synchronous(cluster, old), 60)
    once = exactly_once(cluster, seen)
    lines = _stored(cluster, written.acknowledged)
    verified = _verify(cluster)
    figures = {**once, **lines, "before_kill": before, "killed_processes": len(killed),
               "statuses": seen.statuses, "write_statuses": written.seen.statuses,
               "no_answer": seen.no_answer + written.seen.no_answer,
               "not_problem": seen.not_problem + written.seen.not_problem,
               "503": seen.statuses.get(503, 0) + written.seen.statuses.get(503, 0),
               "promoted_s": round(promoted, 2), "resumed_s": round(promoted + resumed, 2),
               "switch_s": round(switch_time(seen.timeline), 2),
               "rejoined_s": round(rejoined, 2), "new_primary": new,
               "verify": verified}  # fmt: skip
    record("postgresql_primary_killed", figures)
    assert killed, f"no process on {old}"
    assert once["lost"] == 0 and once["doubled"] == 0, figures
    assert lines["lines_lost"] == 0 and lines["lines_doubled"] == 0, figures
    assert once["acknowledged"] > before[0] > 0, figures
    assert lines["lines_acknowledged"] > before[1] > 0, figures
    assert set(seen.statuses) <= {200, 503} and set(written.seen.statuses) <= {200, 503}, figures
    assert figures["not_problem"] == 0, figures
    assert cluster.primary_pg() == new


def _assertion_refused(cluster: Cluster, form: dict[str, str]) -> httpx.Response:
    with netns.entered(cluster.ns("client")), httpx.Client(base_url=cluster.lb_url) as http:
        return http.post("/oauth/token", data=form)


def _allowed_reports(cluster: Cluster, client_id: str) -> int:
    """Reports the audit trail says `client_id` was given (it is new to this test)."""
    with netns.entered(cluster.ns("client")):
        engine = create_engine(cluster.database_url, poolclass=NullPool)
        with engine.connect() as conn:
            found = conn.execute(
                select(func.count())
                .select_from(audit_entries)
                .where(
                    audit_entries.c.client_id == client_id,
                    audit_entries.c.route == REPORT_ROUTE,
                    audit_entries.c.decision == "allow",
                )
            ).scalar_one()
        engine.dispose()
    return int(found)


def test_the_redis_master_killed_keeps_plans_and_spent_assertions(cluster: Cluster) -> None:
    quota = seed_bank(cluster, QUOTA_CLIENT, enterprise=2)
    early = quota.form(cluster.issuer)
    assert _assertion_refused(cluster, early).status_code == 200
    master = cluster.redis_master()
    victim = next(h for h in REDIS_HOSTS if cluster.address(h) == master)
    with load(cluster, quota, users=2, pause=0.2) as seen:
        _until("some reports", lambda: len(seen.acknowledged) >= TINY_PLAN // 3, 20)
        late = quota.form(cluster.issuer)
        assert _assertion_refused(cluster, late).status_code == 200
        before = len(seen.acknowledged)
        cluster.kill(victim)
        switched = _until("a new master", lambda: cluster.redis_master() not in (None, master), 30)
        _until("the plan used up", lambda: seen.statuses.get(429, 0) >= 5, 30)
    replays = [_assertion_refused(cluster, form) for form in (early, late)]
    once = exactly_once(cluster, seen)
    audited = _allowed_reports(cluster, QUOTA_CLIENT)
    figures = {**once, "plan": TINY_PLAN, "before_kill": before, "audited_2xx": audited,
               "statuses": seen.statuses, "no_answer": seen.no_answer,
               "not_problem": seen.not_problem, "503": seen.statuses.get(503, 0),
               "new_master_s": round(switched, 2),
               "switch_s": round(switch_time(seen.timeline, frozenset({200, 429})), 2),
               "replays": [r.status_code for r in replays]}  # fmt: skip
    record("redis_master_killed", figures)
    assert once["lost"] == 0 and once["doubled"] == 0, figures
    # At most the plan: a request charged whose WAIT then timed out is refused
    # (503) and not given back, so a switch may leave the client a little short.
    assert once["acknowledged"] <= TINY_PLAN and audited <= TINY_PLAN, figures
    assert audited == once["acknowledged"], figures
    assert set(seen.statuses) <= {200, 429, 503} and seen.not_problem == 0, figures
    for replay in replays:
        assert replay.status_code in (400, 401), replay.text
        assert replay.json()["error"] == "invalid_client", replay.text
