"""Operators' Prometheus rules and Grafana dashboard name only metrics the gateway exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import gateway.metrics  # noqa: F401 - registers every metric

CONFIG = Path(__file__).resolve().parents[2] / "config"
METRIC = re.compile(r"\bxyd_[a-z_]+")


def exported() -> set[str]:
    # A labelled metric has no samples until used: derive its series names.
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def test_alert_rules_use_exported_metrics() -> None:
    rules = yaml.safe_load((CONFIG / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert exprs
    known = exported()
    for expr in exprs:
        for name in METRIC.findall(expr):
            assert name in known, f"{name} is not exported"


def test_dashboard_panels_use_exported_metrics() -> None:
    dashboard = json.loads((CONFIG / "grafana" / "dashboard.json").read_text())
    known = exported()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in METRIC.findall(target["expr"]):
                assert name in known, f"{panel['title']}: {name} is not exported"


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed (make test installs it)"
)
def test_promtool_accepts_the_rules() -> None:
    subprocess.run(["promtool", "check", "rules", str(CONFIG / "prometheus" / "alerts.yml")],
                   check=True)  # fmt: skip
