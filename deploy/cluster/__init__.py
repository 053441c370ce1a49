"""The gateway's production topology on one machine, each host a Linux network
namespace: etcd, PostgreSQL 15 under Patroni (two hosts, synchronous), Redis with
Sentinel (three hosts), two gateway hosts, the monitor host, HAProxy and a client.

`python -m deploy.cluster up|down|status [--dir D] [--prefix P]`; tests use
`topology.Cluster` (tests/cluster/conftest.py)."""
