"""A gateway host's faults under a bounded load from the client host, through
HAProxy (checks /readyz every second, a host out after two failures):

- cut off from Redis (its packets to the Redis hosts dropped, the rest flows): it
  answers 503 naming Redis, fails report requests closed, and HAProxy sends
  everything to the other host;
- killed whole (every process of the host at once): HAProxy stops sending to it
  within inter * fall, and every acknowledged report keeps exactly one audit entry.

In this order: the cut host comes back before the other test kills it.
"""

from __future__ import annotations

import time

import httpx

from deploy.cluster import lifecycle, netns
from deploy.cluster.engines import GATEWAY_PORT
from deploy.cluster.topology import REDIS_HOSTS, Cluster
from tests.cluster.world import Bank, exactly_once, load, record, token

INTER_S, FALL = 1.0, 2
MARGIN_S = 2.0


def _until_state(cluster: Cluster, host: str, state: str, within: float) -> float:
    """Seconds until HAProxy holds `host` in `state`."""
    start = time.monotonic()
    while lifecycle.lb_servers(cluster).get(host) != state:
        assert time.monotonic() - start < within, f"{host} not {state} in HAProxy in {within} s"
        time.sleep(0.05)
    return time.monotonic() - start


def _sent_to(cluster: Cluster) -> dict[str, int]:
    """Requests HAProxy has sent to each gateway so far (its `stot`)."""
    return {host: int(n) for host, n in lifecycle.lb_servers(cluster, "stot").items()}


def test_a_gateway_cut_from_redis_fails_closed_and_the_other_serves(
    cluster: Cluster, bank: Bank
) -> None:
    gw1 = f"http://{cluster.address('gw1')}:{GATEWAY_PORT}"
    cluster.block("gw1", REDIS_HOSTS)
    try:
        switch = _until_state(cluster, "gw1", "DOWN", INTER_S * FALL + 4)
        with netns.entered(cluster.ns("client")), httpx.Client(timeout=10) as http:
            ready = http.get(f"{gw1}/readyz")
            with httpx.Client(base_url=cluster.lb_url) as through_lb:
                bearer = token(through_lb, cluster, bank)
            assert bearer is not None
            refused = http.get(
                f"{gw1}/v1/enterprises/{bank.credit_code}/credit-report",
                headers={"Authorization": f"Bearer {bearer}", "Consent-Id": bank.consent_id},
            )
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] != "ok", ready.text
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        before = _sent_to(cluster)
        with load(cluster, bank, users=4) as seen:
            time.sleep(3.0)
        after = _sent_to(cluster)
    finally:
        cluster.unblock("gw1")
    once = exactly_once(cluster, seen)
    figures = {**once, "statuses": seen.statuses, "no_answer": seen.no_answer,
               "switch_s": round(switch, 2), "gw1_requests": after["gw1"] - before["gw1"],
               "gw2_requests": after["gw2"] - before["gw2"],
               "gw1_readyz": ready.json()}  # fmt: skip
    record("redis_cut", figures)
    assert after["gw1"] == before["gw1"], "HAProxy sent requests to the cut host"
    assert set(seen.statuses) == {200} and seen.no_answer == 0, figures
    assert once["acknowledged"] > 0 and once["lost"] == 0 and once["doubled"] == 0, figures
    _until_state(cluster, "gw1", "UP", 15)


def test_a_killed_gateway_host_leaves_haproxy_in_time_and_nothing_is_lost(
    cluster: Cluster, bank: Bank
) -> None:
    assert lifecycle.lb_servers(cluster) == {"gw1": "UP", "gw2": "UP"}
    with load(cluster, bank, users=4) as seen:
        time.sleep(2.0)
        before = len(seen.acknowledged)
        killed = cluster.kill_host("gw1")
        switch = _until_state(cluster, "gw1", "DOWN", INTER_S * FALL + MARGIN_S)
        out = _sent_to(cluster)
        time.sleep(3.0)
        assert _sent_to(cluster)["gw1"] == out["gw1"], "HAProxy sent to the dead host"
    once = exactly_once(cluster, seen)
    figures = {**once, "before_kill": before, "killed_processes": len(killed),
               "statuses": seen.statuses, "no_answer": seen.no_answer, "errors": seen.errors,
               "503": seen.statuses.get(503, 0), "switch_s": round(switch, 2)}  # fmt: skip
    record("gateway_killed", figures)
    assert killed, "no process on gw1"
    assert once["lost"] == 0 and once["doubled"] == 0, figures
    assert once["acknowledged"] > before > 0, "no answers after the kill"
    assert set(seen.statuses) <= {200, 502, 503}, figures
