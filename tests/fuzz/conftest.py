"""One gateway for the schema fuzzer: real PostgreSQL and Redis, demo data, a
client of each type with a real access token, and ids that exist.

Built once per session: the fuzzer runs the same app once per role, so every
run finds the same enterprises, consents, alerts and disputes to aim at.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from gateway.alerts.service import apply_finding
from gateway.app import create_app
from gateway.db import make_sync_engine
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor
from gateway.settings import Settings
from gateway.store.tables import enterprises, records
from policies.risk.base import Finding
from testkit.builders import ndjson, penalty
from testkit.clients import ISSUER, ClientKey, register
from testkit.services import Postgres, RedisServer
from tests.conftest import fresh_pg_database
from xyd_demo.platforms import write_credentials
from xyd_demo.seed import seed_demo

ROLES = ("bank", "platform", "department", "risk_office")
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
# High enough that no run is throttled: the fuzzer must reach the handlers.
RATES = {
    "plans": {"fuzz": {"rate_per_s": 100_000, "burst": 1_000_000, "reports_per_day": 10_000_000}},
    "default_plan": "fuzz",
    "enterprise_reports_per_day": 10_000_000,
}


@dataclass
class World:
    """What the fuzzer aims at: tokens per role, and ids that exist."""

    settings: Settings
    tokens: dict[str, str]
    credit_codes: list[str]
    consent_ids: dict[str, list[str]]
    alert_ids: list[str]
    record_ids: dict[str, list[int]]
    categories: list[str]
    dispute_ids: list[str]
    grantees: list[str]
    report_ids: list[str]
    # A pending credit repair application about the department's penalty, and its file.
    repair_ids: list[str]
    evidence_ids: list[int]

    @staticmethod
    def for_role(ids: dict[str, list[Any]], role: str | None) -> list[Any]:
        """The role's own ids, or everyone's for a role that has none."""
        return ids.get(role or "") or [i for own in ids.values() for i in own]

    def headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}


def _config_dir(tmp: Path) -> Path:
    target = tmp / "config"
    shutil.copytree(CONFIG_DIR, target, ignore=shutil.ignore_patterns("grafana", "prometheus"))
    rates = yaml.safe_load((CONFIG_DIR / "rates.yaml").read_text())
    (target / "rates.yaml").write_text(yaml.safe_dump({**RATES, "routes": rates["routes"]}))
    return target


def _consent(credit_code: str, grantee: str) -> dict[str, Any]:
    return {
        "credit_code": credit_code,
        "grantee": grantee,
        "purpose": "credit_review",
        "scopes": ["basic", "licenses", "penalties", "lists", "tax", "judicial", "loans"],
        "valid_until": (datetime.now(UTC) + timedelta(days=150)).isoformat(),
        "evidence": {"document_sha256": "ab" * 32, "signer": "法定代表人", "channel": "direct"},
    }


def _raise_alerts(engine: Engine, codes: list[str]) -> list[str]:
    found = []
    with engine.begin() as conn:
        for n, code in enumerate(codes):
            finding = Finding(
                rule="overdue_default",
                severity="high",
                subject=f"loan:kechuangtong:KCT-{n}",
                title="还款逾期 30 天",
                evidence=(f"loan:kct:{n}",),
                credit_code=code,
                details={"days_overdue": 30},
            )
            found.append(apply_finding(conn, finding, datetime.now(UTC))[0])
    return found


def _populate(settings: Settings, engine: Engine, tmp: Path) -> World:
    seed_demo(engine, b"test-pii-key", enterprises=12, seed=7, out_dir=tmp, as_of=date.today())
    with engine.connect() as conn:
        codes = list(conn.scalars(select(enterprises.c.credit_code).order_by(enterprises.c.id)))
        # Records of one category, so a generated (category, record_id) pair often exists.
        category = conn.scalar(select(records.c.category).order_by(records.c.id).limit(1))
        record_ids = list(
            conn.scalars(
                select(records.c.id).where(records.c.category == category).order_by(records.c.id)
            )
        )[:8]
    keys: dict[str, ClientKey] = {
        "bank": register(engine, "fuzz-bank", org_code="FZBK"),
        "platform": register(engine, "fuzz-platform", client_type="platform"),
        "department": register(engine, "fuzz-department", client_type="department"),
        "risk_office": register(engine, "fuzz-office", client_type="risk_office"),
    }
    with TestClient(create_app(settings)) as client:
        tokens = {}
        for role, key in keys.items():
            answer = client.post("/oauth/token", data=key.form())
            assert answer.status_code == 200, answer.text
            tokens[role] = answer.json()["access_token"]
        # Each registrant its own: one role's run revoking them leaves the next its own.
        consent_ids: dict[str, list[str]] = {"bank": [], "platform": []}
        for role, code in zip(["bank", "bank", "platform", "platform"], codes, strict=False):
            answer = client.post(
                "/v1/consents",
                json=_consent(code, "FZBK"),
                headers={"Authorization": f"Bearer {tokens[role]}"},
            )
            assert answer.status_code == 201, answer.text
            consent_ids[role].append(answer.json()["id"])
        answer = client.post(
            f"/v1/records/{category}/{record_ids[0]}/disputes",
            json={"reason": "处罚已撤销"},
            headers={"Authorization": f"Bearer {tokens['platform']}"},
        )
        assert answer.status_code == 201, answer.text
        dispute_id = answer.json()["id"]
        # A report issued to the bank, for GET /v1/reports/{report_id}.
        answer = client.get(
            f"/v1/enterprises/{codes[0]}/credit-report",
            headers={
                "Authorization": f"Bearer {tokens['bank']}",
                "Consent-Id": consent_ids["bank"][0],
            },
        )
        assert answer.status_code == 200, answer.text
        report_id = answer.json()["report_id"]
        repair = _repair_application(engine, client, tokens["platform"], codes[0])
    return World(
        settings=settings,
        tokens=tokens,
        credit_codes=codes[:4],
        consent_ids=consent_ids,
        alert_ids=_raise_alerts(engine, codes[:3]),
        # The platform's run opens disputes on its records; the department resolves
        # the first one's and opens its own on the rest.
        record_ids={"platform": record_ids[1:4], "department": [record_ids[0], *record_ids[4:]]},
        categories=[str(category)],
        dispute_ids=[dispute_id],
        grantees=["FZBK", "fuzz-bank"],
        report_ids=[report_id],
        repair_ids=[repair["id"]],
        evidence_ids=[e["id"] for e in repair["evidence"]],
    )


def _repair_application(
    engine: Engine, client: TestClient, platform_token: str, credit_code: str
) -> dict[str, Any]:
    """A penalty of the market regulator (the fuzz department's), repairable now, and a
    platform's application for it."""
    decided = (datetime.now(UTC) - timedelta(days=120)).date().isoformat()
    row = penalty(1, record_id="FZ-P-1", credit_code=credit_code, decision_date=decided,
                  publication_until=None)  # fmt: skip
    Ingestor(engine, "penalty", b"test-pii-key", 10).run(
        read_ndjson(ndjson(row).splitlines()), "fuzz"
    )
    with engine.connect() as conn:
        record_id = conn.scalar(select(records.c.id).where(records.c.source_record_id == "FZ-P-1"))
    auth = {"Authorization": f"Bearer {platform_token}"}
    sha = client.get("/v1/repairs/commitment", headers=auth).json()["text_sha256"]
    pdf = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    body = {
        "credit_code": credit_code, "record_id": record_id,
        "commitment": {"accepted": True, "text_sha256": sha},
        "evidence": [{"file_name": "凭证.pdf", "content_base64": base64.b64encode(pdf).decode()}],
    }  # fmt: skip
    answer = client.post("/v1/repairs", json=body, headers=auth)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


@pytest.fixture(scope="session")
def world(
    pg: Postgres, redis_srv: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("fuzz")
    redis.Redis.from_url(redis_srv.url).flushall()
    settings = Settings(
        state_dir=tmp / ".xyd",
        config_dir=_config_dir(tmp),
        database_url=fresh_pg_database(pg),
        redis_url=redis_srv.url,
        # The fuzzer judges answers to hostile input. On a busy CI machine a
        # Redis reply can take longer than the default 0.25 s, which is the
        # Redis-down path (a 503, fail closed): tests/faults covers that.
        redis_timeout_s=5,
        pii_key="test-pii-key",  # type: ignore[arg-type]
        public_base_url=ISSUER,
        key_activation_delay_s=0,
        run_background=False,
        access_token_ttl_s=900,
        log_level="WARNING",
    )
    # The push platforms' shared secrets and keys: without them they answer 503.
    write_credentials(settings.state_dir)
    engine = make_sync_engine(settings)
    try:
        yield _populate(settings, engine, tmp)
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def _schemathesis_node_id(request: pytest.FixtureRequest) -> None:
    # Schemathesis 4.32's lazy schemas read `node._nodeid`, which pytest 9.2
    # no longer has (it keeps `_id`); give it the same string.
    request.node._nodeid = request.node.nodeid
