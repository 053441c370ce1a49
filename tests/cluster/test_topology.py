"""The topology of deploy/cluster: a bank on the client host gets a token and its
report through HAProxy from gateways on PostgreSQL under Patroni and Redis with
Sentinel; taking it down leaves no namespace and no process."""

from __future__ import annotations

import time

import httpx

from deploy.cluster import lifecycle, netns
from deploy.cluster.topology import Cluster
from tests.cluster.world import Bank, audit_request_ids, token


def test_a_bank_gets_a_token_and_a_report_through_haproxy(cluster: Cluster, bank: Bank) -> None:
    assert cluster.primary_pg() in ("pg1", "pg2")
    assert cluster.redis_master() == cluster.address("redis1")
    assert lifecycle.lb_servers(cluster) == {"gw1": "UP", "gw2": "UP"}
    with netns.entered(cluster.ns("client")), httpx.Client(base_url=cluster.lb_url) as http:
        bearer = token(http, cluster, bank)
        assert bearer is not None
        answer = http.get(
            f"/v1/enterprises/{bank.credit_code}/credit-report",
            headers={"Authorization": f"Bearer {bearer}", "Consent-Id": bank.consent_id},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["credit_code"] == bank.credit_code
    assert answer.headers["x-request-id"] in audit_request_ids(cluster)


def test_a_host_whose_link_is_down_leaves_haproxy_and_comes_back(
    cluster: Cluster, bank: Bank
) -> None:
    cluster.link_down("gw2")
    try:
        _until(cluster, "gw2", "DOWN")
        with netns.entered(cluster.ns("client")), httpx.Client(base_url=cluster.lb_url) as http:
            bearer = token(http, cluster, bank)
            assert bearer is not None
            statuses = [
                http.get(
                    f"/v1/enterprises/{bank.credit_code}/credit-report",
                    headers={"Authorization": f"Bearer {bearer}", "Consent-Id": bank.consent_id},
                ).status_code
                for _ in range(10)
            ]
        assert statuses == [200] * 10
    finally:
        cluster.link_up("gw2")
    _until(cluster, "gw2", "UP")


def _until(cluster: Cluster, host: str, state: str, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while lifecycle.lb_servers(cluster).get(host) != state:
        assert time.monotonic() < deadline, f"{host} not {state} in HAProxy"
        time.sleep(0.1)


def test_down_leaves_no_namespace_and_no_process(cluster: Cluster) -> None:
    started = dict(cluster.pids)
    assert lifecycle.down(cluster) == []
    assert not [ns for ns in netns.existing() if ns.startswith(f"{cluster.prefix}-")]
    assert not cluster.root.exists() and not cluster.pg_root.exists()
    for name, pid in started.items():
        assert not _alive(pid), f"{name} (pid {pid}) still runs"


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except FileNotFoundError:
        return False
