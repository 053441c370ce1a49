"""The topology of deploy/cluster: a bank on the client host gets a token and its
report through HAProxy from gateways on PostgreSQL under Patroni and Redis with
Sentinel, one of them run from the image's root filesystem; a base backup and the
WAL archive restore into a fresh server whose audit trail verifies; taking it
down leaves no namespace and no process."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import httpx

from deploy.cluster import backup, lifecycle, netns
from deploy.cluster.gateways import REPO
from deploy.cluster.topology import GATEWAY_HOSTS, IMAGE_HOST, RESTORE_HOST, Cluster
from testkit.procfs import mount_at, process_status
from tests.cluster.world import Bank, audit_request_ids, record, token

UID = "10001"


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
            statuses = ten_reports(http, cluster, bank)
        assert statuses == [200] * 10
    finally:
        cluster.link_up("gw2")
    _until(cluster, "gw2", "UP")


def ten_reports(http: httpx.Client, cluster: Cluster, bank: Bank) -> list[int]:
    """The statuses of ten reports asked for through HAProxy with one token."""
    bearer = token(http, cluster, bank)
    assert bearer is not None
    return [
        http.get(
            f"/v1/enterprises/{bank.credit_code}/credit-report",
            headers={"Authorization": f"Bearer {bearer}", "Consent-Id": bank.consent_id},
        ).status_code
        for _ in range(10)
    ]


def _until(cluster: Cluster, host: str, state: str, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while lifecycle.lb_servers(cluster).get(host) != state:
        assert time.monotonic() < deadline, f"{host} not {state} in HAProxy"
        time.sleep(0.1)


def test_gw2_runs_from_the_image_read_only_as_10001(cluster: Cluster) -> None:
    assert cluster.image is not None
    pids = netns.pids(cluster.ns(IMAGE_HOST))
    assert len(pids) >= 3, pids  # the supervisor and its two workers
    for pid in pids:
        status = process_status(pid)
        assert status["Uid"].split() == [UID] * 4, (pid, status["Uid"])
        assert status["Gid"].split() == [UID] * 4
        assert int(status["CapEff"], 16) == 0 and status["NoNewPrivs"] == "1"
        root = mount_at(pid, "/").split()
        assert "ro" in root[5].split(","), root
        assert root[3].endswith("/rootfs"), root
    assert (cluster.root / IMAGE_HOST / "state").stat().st_uid == int(UID)


def test_both_gateways_serve_reports_through_haproxy(cluster: Cluster, bank: Bank) -> None:
    before = {h: int(n) for h, n in lifecycle.lb_servers(cluster, "stot").items()}
    with netns.entered(cluster.ns("client")), httpx.Client(base_url=cluster.lb_url) as http:
        statuses = ten_reports(http, cluster, bank)
    assert statuses == [200] * 10
    after = {h: int(n) for h, n in lifecycle.lb_servers(cluster, "stot").items()}
    sent = {host: after[host] - before[host] for host in GATEWAY_HOSTS}
    assert all(n >= 4 for n in sent.values()), sent  # round robin: about half each


def _reports(cluster: Cluster, bank: Bank, n: int) -> None:
    with netns.entered(cluster.ns("client")), httpx.Client(base_url=cluster.lb_url) as http:
        bearer = token(http, cluster, bank)
        assert bearer is not None
        for _ in range(n):
            answer = http.get(
                f"/v1/enterprises/{bank.credit_code}/credit-report",
                headers={"Authorization": f"Bearer {bearer}", "Consent-Id": bank.consent_id},
            )
            assert answer.status_code == 200, answer.text


def _witnessed(cluster: Cluster, seq: int, within: float = 15) -> None:
    """Until a gateway host's witness holds the head at `seq`, and a seal round
    later (XYD_AUDIT_SEAL_S=1) the other workers' heads too."""
    deadline = time.monotonic() + within
    while True:
        seqs = {
            json.loads(line)["seq"]
            for host in GATEWAY_HOSTS
            if (path := cluster.root / host / "state" / "audit-witness.jsonl").exists()
            for line in path.read_text().splitlines()
            if line.strip()
        }
        if seq in seqs:
            break
        assert time.monotonic() < deadline, f"no witness holds seq {seq}"
        time.sleep(0.2)
    time.sleep(2.5)


def _cluster_cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "deploy.cluster", *args, "--dir", str(cluster.root)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_a_backup_restores_into_a_fresh_server_and_verifies(cluster: Cluster, bank: Bank) -> None:
    started = time.monotonic()
    _reports(cluster, bank, 10)
    first = backup.trail(cluster, cluster.database_url)
    _witnessed(cluster, first.last_seq)
    took = _cluster_cli(cluster, "backup")
    assert took.returncode == 0, took.stderr
    assert (Path(took.stdout.strip()) / "base.tar.gz").exists()
    before_second = datetime.now(UTC)
    time.sleep(1)
    _reports(cluster, bank, 10)
    primary = backup.trail(cluster, cluster.database_url)
    _witnessed(cluster, primary.last_seq)
    done = _restore(cluster)  # switches the WAL segment and waits for its archiving
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    expected = f"{primary.count} audit entries, last seq {primary.last_seq}"
    assert expected in done.stdout, done.stdout
    print(done.stdout)
    assert "FAILED" not in done.stdout
    # The witness files (the audit-export lease holder's host, or the hosts it
    # moved over) held checkpoints up to the head, and the restored chain matched.
    passed = r"against (\w+)'s witness .*: passed\n.*checkpoints match, the last at seq (\d+)"
    witnessed = re.findall(passed, done.stdout)
    assert witnessed and {host for host, _ in witnessed} <= set(GATEWAY_HOSTS), done.stdout
    assert max(int(seq) for _, seq in witnessed) == primary.last_seq, done.stdout
    assert not [ns for ns in netns.existing() if ns == cluster.ns(RESTORE_HOST)]

    # To a time before the second batch: the first batch's trail, and the live
    # witnesses name the entries the restore dropped.
    then = _restore(cluster, "--target-time", before_second.isoformat())
    assert f"{first.count} audit entries, last seq {first.last_seq}" in then.stdout, then.stdout
    assert then.returncode == 1 and "truncated" in then.stdout, then.stdout
    figures = {"primary": asdict(primary), "point_in_time": asdict(first)}
    record("backup_restore", {**figures, "seconds": round(time.monotonic() - started, 1)})


def _restore(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    to = Path(tempfile.mkdtemp(prefix="xyd-restored-"))
    try:
        return _cluster_cli(cluster, "restore", "--to", str(to), *args)
    finally:
        shutil.rmtree(to, ignore_errors=True)


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
