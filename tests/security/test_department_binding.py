"""A department writes only its own records (issue 19, High 1).

The attack: one department's credential removed another's black-list entry,
forged an approved repair "from" another department for its serious penalty,
and renamed an enterprise through a registration record. Each line is now
refused on its own (other lines of the batch still stored), the bank's report
is unchanged, the owner can still update, and every write is in the
enterprise's access log.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from gateway.errors import InvalidValue
from gateway.identity.clients import create_client
from gateway.keys import jose
from gateway.records.ingest_file import ingest_file
from gateway.settings import Settings
from gateway.store.tables import audit_entries, enterprises, records
from policies.departments import Departments
from testkit.builders import CREDIT_OFFICE, MARKET, TAX, code, ndjson, penalty, registration
from testkit.clients import DEPARTMENTS, ClientKey, new_key, register
from tests.reports.test_reports_api import after_data_change, bearer, consent, fetch

SME = code(1)
ECOLOGY = "成都市生态环境局"
NDJSON = {"Content-Type": "application/x-ndjson"}
WRITES = "POST /v1/records/{category}"


def today() -> date:
    return datetime.now(UTC).date()


def deliver(
    client: TestClient, auth: dict[str, str], category: str, *rows: dict[str, Any]
) -> list[dict[str, Any]]:
    headers = {**auth, **NDJSON}
    answer = client.post(f"/v1/records/{category}", content=ndjson(*rows), headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["results"])


def outcomes(results: list[dict[str, Any]]) -> list[str]:
    return [r["outcome"] for r in results]


def department(client: TestClient, engine: Engine, name: str, owner: str) -> dict[str, str]:
    return bearer(client, register(engine, name, "department", department=owner))


def code_of(name: str) -> str:
    found = DEPARTMENTS.find(name)
    assert found is not None
    return found.code


def black_listed(**overrides: Any) -> dict[str, Any]:
    row = {
        "record_id": "B-1", "source_department": CREDIT_OFFICE, "credit_code": SME,
        "list_name": "严重失信主体名单", "listing_authority": MARKET, "reason": "拒不履行",
        "listed_on": (today() - timedelta(days=10)).isoformat(),
    }  # fmt: skip
    return {**row, **overrides}


def serious_penalty(record_id: str = "P-SERIOUS", **overrides: Any) -> dict[str, Any]:
    decided = today() - timedelta(days=40)
    return penalty(
        1, record_id=record_id, credit_code=SME, fine_wan="130", severity="serious",
        decision_date=decided.isoformat(), publication_until=None, **overrides,
    )  # fmt: skip


def repair(target: str, owner: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "record_id": f"CR-{target}", "credit_code": SME, "repaired_category": "penalty",
        "repaired_record_id": target, "repaired_source_department": owner,
        "repair_authority": owner, "effective_on": today().isoformat(), "status": "approved",
    }  # fmt: skip
    return {**row, **overrides}


def report(client: TestClient, auth: dict[str, str], consent_id: str) -> dict[str, Any]:
    after_data_change(client)
    answer = fetch(client, auth, consent_id)
    assert answer.status_code == 200, answer.text
    body = dict(answer.json())
    return {
        "score": body["score"]["value"],
        **{
            section: [i["source_record_id"] for i in body["sections"][section]["items"]]
            for section in ("lists", "penalties")
            if section in body["sections"]
        },
        "name": body["sections"]["basic"].get("name"),
    }


def written(engine: Engine, credit_code: str = SME) -> list[tuple[str, str, str]]:
    """(client, decision, reason) of the record writes audited for the enterprise."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_entries.c.client_id, audit_entries.c.decision, audit_entries.c.reason)
            .where(audit_entries.c.credit_code == credit_code)
            .where(audit_entries.c.reason.like("record %"))
            .order_by(audit_entries.c.seq)
        ).all()
    return [tuple(row) for row in rows]


@pytest.fixture
def bank_auth(app_client: TestClient, bank: ClientKey) -> dict[str, str]:
    return bearer(app_client, bank)


def test_a_department_cannot_lift_another_departments_black_list_entry(
    app_client: TestClient, engine: Engine, bank_auth: dict[str, str]
) -> None:
    office = department(app_client, engine, "dept-credit", CREDIT_OFFICE)
    market = department(app_client, engine, "dept-market", MARKET)
    assert outcomes(deliver(app_client, office, "black_list", black_listed())) == ["accepted"]
    granted = consent(app_client, bank_auth, scopes=["basic", "penalties", "lists"])
    before = report(app_client, bank_auth, granted["id"])
    assert before["lists"] == ["B-1"]

    lifted = today().isoformat()
    results = deliver(
        app_client, market, "black_list",
        black_listed(removed_on=lifted),  # names the credit office
        black_listed(removed_on=lifted, source_department=code_of(CREDIT_OFFICE)),
        {**black_listed(removed_on=lifted, record_id="B-M"), "source_department": MARKET},
    )  # fmt: skip
    assert outcomes(results) == ["rejected", "rejected", "accepted"]
    assert "not the delivering department" in results[0]["reason"]
    assert CREDIT_OFFICE in results[0]["reason"]
    assert report(app_client, bank_auth, granted["id"]) == before, "the bank's report unchanged"

    # The owner still updates its own entry.
    lifted_by_owner = deliver(app_client, office, "black_list", black_listed(removed_on=lifted))
    assert outcomes(lifted_by_owner) == ["updated"]
    assert report(app_client, bank_auth, granted["id"])["lists"] == []

    assert written(engine) == [
        ("dept-credit", "allow", "record accepted: black_list B-1 v1"),
        ("dept-market", "deny",
         f"record rejected: black_list B-1: source_department: {CREDIT_OFFICE} is not the "
         f"delivering department ({MARKET})"),
        ("dept-market", "deny",
         f"record rejected: black_list B-1: source_department: "
         f"{code_of(CREDIT_OFFICE)} is not the delivering department ({MARKET})"),
        ("dept-market", "allow", "record accepted: black_list B-M v1"),
        ("dept-credit", "allow", "record updated: black_list B-1 v2"),
    ]  # fmt: skip


def test_a_forged_repair_of_another_departments_penalty_is_refused(
    app_client: TestClient, engine: Engine, bank_auth: dict[str, str]
) -> None:
    market = department(app_client, engine, "dept-market", MARKET)
    ecology = department(app_client, engine, "dept-ecology", ECOLOGY)
    tax = department(app_client, engine, "dept-tax", TAX)
    office = department(app_client, engine, "dept-credit", CREDIT_OFFICE)
    assert outcomes(deliver(app_client, market, "penalty", serious_penalty())) == ["accepted"]
    granted = consent(app_client, bank_auth)
    before = report(app_client, bank_auth, granted["id"])
    assert before["penalties"] == ["P-SERIOUS"]

    # Another department that repairs its own records only: refused, as the market's.
    [own_only] = deliver(app_client, ecology, "credit_repair", repair("P-SERIOUS", MARKET))
    assert own_only["outcome"] == "rejected"
    assert "repaired by the credit office or by that department" in own_only["reason"]
    # Claiming the market regulator as the repair's source.
    [named] = deliver(
        app_client, ecology, "credit_repair",
        repair("P-SERIOUS", MARKET, source_department=MARKET),
    )  # fmt: skip
    assert "not the delivering department" in named["reason"]
    # A department that may not repair at all.
    [no_repairs] = deliver(app_client, tax, "credit_repair", repair("P-SERIOUS", MARKET))
    assert "may not deliver credit_repair" in no_repairs["reason"]
    # Even the credit office names a record it may repair: stored, of this enterprise.
    unknown, elsewhere, unnamed = deliver(
        app_client, office, "credit_repair",
        repair("P-NOPE", MARKET),
        repair("P-SERIOUS", MARKET, credit_code=code(2)),
        repair("P-SERIOUS", MARKET, repaired_source_department=None, record_id="CR-X"),
    )  # fmt: skip
    assert "has no penalty record P-NOPE" in unknown["reason"]
    assert "about another subject" in elsewhere["reason"]
    assert "repaired_source_department: required" in unnamed["reason"]
    assert report(app_client, bank_auth, granted["id"]) == before, "the bank's report unchanged"

    # The credit office, and the department that decided the penalty, may repair it.
    assert outcomes(deliver(app_client, office, "credit_repair", repair("P-SERIOUS", MARKET))) == [
        "accepted"
    ]
    mine = repair("P-SERIOUS", MARKET, record_id="CR-MARKET")
    assert outcomes(deliver(app_client, market, "credit_repair", mine)) == ["accepted"]
    decisions = [(client, decision) for client, decision, _ in written(engine)]
    assert decisions == [
        ("dept-market", "allow"), ("dept-ecology", "deny"), ("dept-ecology", "deny"),
        ("dept-tax", "deny"), ("dept-credit", "deny"), ("dept-credit", "deny"),
        ("dept-credit", "allow"), ("dept-market", "allow"),
    ]  # fmt: skip


def test_only_the_registration_authority_renames_an_enterprise(
    app_client: TestClient, engine: Engine
) -> None:
    office = department(app_client, engine, "dept-credit", CREDIT_OFFICE)
    market = department(app_client, engine, "dept-market", MARKET)

    def name() -> str:
        with engine.connect() as conn:
            query = select(enterprises.c.name).where(enterprises.c.credit_code == SME)
            return str(conn.execute(query).scalar_one())

    before = name()
    renamed = registration(1, record_id="R-000001", subject_name="成都冒名顶替有限公司")
    [refused] = deliver(app_client, office, "registration", renamed)
    assert refused["outcome"] == "rejected"
    assert "may not deliver registration" in refused["reason"]
    assert name() == before
    assert outcomes(deliver(app_client, market, "registration", renamed)) == ["updated"]
    assert name() == "成都冒名顶替有限公司"


def test_a_department_client_is_registered_with_its_department_and_categories(
    engine: Engine,
) -> None:
    key = {"keys": [jose.public_jwk(new_key())]}
    ecology = DEPARTMENTS.find(ECOLOGY)
    assert ecology is not None
    with engine.begin() as conn:
        with pytest.raises(InvalidValue, match="registered for its department"):
            create_client(
                conn, client_id="d1", display_name="d", client_type="department", jwks=key
            )
        with pytest.raises(InvalidValue, match="may not deliver registration"):
            create_client(
                conn, client_id="d2", display_name="d", client_type="department", jwks=key,
                department=ecology, categories=["penalty", "registration"],
            )  # fmt: skip
        with pytest.raises(InvalidValue, match="only a department client"):
            create_client(
                conn, client_id="b1", display_name="b", client_type="bank", jwks=key,
                department=ecology, categories=["penalty"],
            )  # fmt: skip


def test_the_configuration_gives_registration_to_the_registration_authority_alone(
    tmp_path: Path,
) -> None:
    config = Path(__file__).resolve().parents[2] / "config" / "departments.yaml"
    text = config.read_text(encoding="utf-8")
    bad = tmp_path / "departments.yaml"
    given = text.replace("[tax_rating,", "[registration, tax_rating,")
    assert given != text
    bad.write_text(given)
    with pytest.raises(ValueError, match="only the registration authority"):
        Departments.load(bad)


def test_a_category_the_client_does_not_hold_is_refused_per_line(
    app_client: TestClient, engine: Engine
) -> None:
    only_penalties = register(engine, "dept-p", "department", categories=["penalty"])
    auth = bearer(app_client, only_penalties)
    [line] = deliver(app_client, auth, "black_list", black_listed(source_department=MARKET))
    assert (line["outcome"], line["record_id"]) == ("rejected", "B-1")
    assert "may not deliver black_list" in line["reason"]
    assert outcomes(deliver(app_client, auth, "penalty", penalty(1, credit_code=SME))) == [
        "accepted"
    ]


def test_xyd_ingest_binds_the_file_to_the_named_department(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    feed = tmp_path / "penalties.ndjson"
    feed.write_bytes(
        ndjson(penalty(1, credit_code=SME), penalty(2, credit_code=SME, source_department=TAX))
    )
    assert ingest_file(settings, feed, "penalty", None, None, "no such department") == 2
    assert ingest_file(settings, feed, "penalty", None, None, MARKET) == 0
    operator = f"ingest:{code_of(MARKET)}"
    assert written(engine) == [
        (operator, "allow", "record accepted: penalty P-000001 v1"),
        (operator, "deny",
         f"record rejected: penalty P-000002: source_department: {TAX} is not the delivering "
         f"department ({MARKET})"),
    ]  # fmt: skip


def test_every_record_write_is_in_the_enterprises_access_log(
    app_client: TestClient, engine: Engine
) -> None:
    market = department(app_client, engine, "dept-market", MARKET)
    first, again = penalty(1, credit_code=SME), penalty(1, credit_code=SME)
    changed = penalty(1, credit_code=SME, fine_wan="2")
    assert outcomes(
        deliver(app_client, market, "penalty", first, again, changed, {**first, "fine_wan": "x"})
    ) == ["accepted", "duplicate", "updated", "rejected"]
    office = register(engine, "risk", "risk_office")
    log = app_client.get(
        f"/v1/enterprises/{SME}/access-log?limit=20", headers=bearer(app_client, office)
    )
    assert log.status_code == 200, log.text
    items = [
        (i["client_id"], i["route"], i["decision"], i["reason"])
        for i in reversed(log.json()["items"])
    ]
    assert items[-4:] == [
        ("dept-market", WRITES, "allow", "record accepted: penalty P-000001 v1"),
        ("dept-market", WRITES, "allow", "record duplicate: penalty P-000001 v1"),
        ("dept-market", WRITES, "allow", "record updated: penalty P-000001 v2"),
        ("dept-market", WRITES, "deny", items[-1][3]),
    ]
    assert items[-1][3].startswith("record rejected: penalty P-000001: fine_wan")


def test_only_the_owning_department_resolves_a_dispute_on_its_record(
    app_client: TestClient, engine: Engine
) -> None:
    market = department(app_client, engine, "dept-market", MARKET)
    ecology = department(app_client, engine, "dept-ecology", ECOLOGY)
    platform = bearer(app_client, register(engine, "kct", "platform", org_code="KCT"))
    [stored] = deliver(app_client, market, "penalty", penalty(1, credit_code=SME))
    assert stored["outcome"] == "accepted"
    with engine.connect() as conn:
        record_id = conn.execute(
            select(records.c.id).where(records.c.category == "penalty")
        ).scalar_one()
    url = f"/v1/records/penalty/{record_id}/disputes"
    other = app_client.post(url, json={"reason": "x"}, headers=ecology)
    assert other.status_code == 403, other.text
    opened = app_client.post(url, json={"reason": "罚款已缴清"}, headers=platform)
    assert opened.status_code == 201, opened.text
    resolve = f"{url}/{opened.json()['id']}/resolve"
    verdict = {"outcome": "rejected", "note": "处罚决定有效"}
    assert app_client.post(resolve, json=verdict, headers=ecology).status_code == 403
    assert app_client.post(resolve, json=verdict, headers=market).status_code == 200
