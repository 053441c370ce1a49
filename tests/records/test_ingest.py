"""Ingestion on SQLite and PostgreSQL: outcomes per line, nothing stored twice."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, select

from gateway.records.ingest_file import ingest_file
from gateway.records.readers import read_csv, read_ndjson
from gateway.records.service import Ingestor, LineOutcome
from gateway.settings import Settings
from gateway.store.tables import (
    enterprises,
    ingest_runs,
    penalty_details,
    record_versions,
    records,
)
from testkit import builders
from testkit.builders import MARKET, ndjson, penalty, registration

KEY = b"test-pii-key"


def run(engine: Engine, category: str, payload: bytes, fmt: str = "ndjson") -> list[LineOutcome]:
    outcomes: list[LineOutcome] = []
    reader = read_ndjson if fmt == "ndjson" else read_csv
    Ingestor(engine, category, KEY, batch_size=3).run(
        reader(payload.splitlines(keepends=True)), source="test", on_outcome=outcomes.append
    )
    return outcomes


def count(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_mixed_file_gives_one_outcome_per_line_and_stores_good_rows_once(engine: Engine) -> None:
    first = run(engine, "penalty", ndjson(penalty(1), penalty(2)))
    assert [o.outcome for o in first] == ["accepted", "accepted"]

    mixed = (
        ndjson(
            penalty(1),  # duplicate: same id, same content
            penalty(2, fine_wan="3"),  # updated: same id, new content
            penalty(3),  # accepted
            penalty(4, credit_code="9144030071526726XA"),  # bad check character
            {k: v for k, v in penalty(5).items() if k != "decision_date"},  # missing field
            penalty(6, fine_wan="a lot"),  # non-numeric fine
        )
        + "不是UTF-8\n".encode("gb18030")  # wrong encoding
        + b"{not json\n"
        + ndjson(penalty(7))
    )
    outcomes = run(engine, "penalty", mixed)

    assert [(o.line, o.outcome) for o in outcomes] == [
        (1, "duplicate"),
        (2, "updated"),
        (3, "accepted"),
        (4, "rejected"),
        (5, "rejected"),
        (6, "rejected"),
        (7, "rejected"),
        (8, "rejected"),
        (9, "accepted"),
    ]
    reasons = {o.line: o.reason or "" for o in outcomes if o.outcome == "rejected"}
    assert "check character should be" in reasons[4]
    assert "decision_date" in reasons[5]
    assert "fine_wan" in reasons[6]
    assert "not a number" in reasons[6]
    assert "UTF-8" in reasons[7]
    assert "JSON" in reasons[8]

    assert count(engine, records) == 4  # P-1, P-2, P-3, P-7
    assert count(engine, record_versions) == 5  # P-2 has two versions
    assert count(engine, penalty_details) == 5
    with engine.connect() as conn:
        p2 = conn.execute(
            select(records.c.version, records.c.id).where(records.c.source_record_id == "P-000002")
        ).one()
        fines = conn.execute(
            select(penalty_details.c.version, penalty_details.c.fine_fen)
            .where(penalty_details.c.record_id == p2.id)
            .order_by(penalty_details.c.version)
        ).all()
    assert p2.version == 2
    assert [tuple(f) for f in fines] == [(1, 1_500_000), (2, 3_000_000)]


def test_rerunning_a_file_changes_nothing(engine: Engine) -> None:
    payload = ndjson(*(penalty(n) for n in range(1, 8)), penalty(3, fine_wan="2"))
    first = run(engine, "penalty", payload)
    assert [o.outcome for o in first] == ["accepted"] * 7 + ["updated"]

    before = (count(engine, records), count(engine, record_versions))
    again = run(
        engine,
        "penalty",
        ndjson(*(penalty(n) for n in (1, 2, 4, 5, 6, 7)), penalty(3, fine_wan="2")),
    )
    assert {o.outcome for o in again} == {"duplicate"}
    assert (count(engine, records), count(engine, record_versions)) == before


def test_file_carrying_two_versions_of_a_record_reapplies_them_in_order(engine: Engine) -> None:
    payload = ndjson(penalty(3), penalty(3, fine_wan="2"))
    run(engine, "penalty", payload)
    again = run(engine, "penalty", payload)
    # The older content is a genuine change back, the newer one then too; the
    # record ends where the file ends and no version is lost.
    assert [o.outcome for o in again] == ["updated", "updated"]
    with engine.connect() as conn:
        fine = conn.execute(
            select(penalty_details.c.fine_fen)
            .join(records, records.c.id == penalty_details.c.record_id)
            .where(penalty_details.c.version == records.c.version)
        ).scalar_one()
    assert fine == 2_000_000


def test_same_id_twice_in_one_batch_is_accepted_then_updated(engine: Engine) -> None:
    outcomes = run(engine, "penalty", ndjson(penalty(1), penalty(1, fine_wan="9")))
    assert [(o.outcome, o.version) for o in outcomes] == [("accepted", 1), ("updated", 2)]
    assert count(engine, records) == 1
    assert count(engine, record_versions) == 2


def test_amounts_in_ten_thousand_yuan_convert_exactly_to_fen(engine: Engine) -> None:
    outcomes = run(
        engine,
        "penalty",
        ndjson(
            penalty(1, fine_wan="0.000001", confiscation_wan="12.345678"),
            penalty(2, fine_wan="0.0000001"),  # finer than a fen
            penalty(3, fine_wan=-1),
            penalty(4, fine_wan=True),  # JSON true is not a number
            penalty(5, fine_wan="1", fine_fen=999),  # two amounts disagree
        ),
    )
    assert [o.outcome for o in outcomes] == ["accepted"] + ["rejected"] * 4
    assert "6 decimals" in (outcomes[1].reason or "")
    assert "negative" in (outcomes[2].reason or "")
    assert "boolean" in (outcomes[3].reason or "")
    assert "disagrees" in (outcomes[4].reason or "")
    with engine.connect() as conn:
        row = conn.execute(
            select(penalty_details.c.fine_fen, penalty_details.c.confiscation_fen)
        ).one()
    assert tuple(row) == (1, 12_345_678)


def test_personal_identifiers_are_never_stored_in_clear(engine: Engine) -> None:
    person_id = builders.resident_id("51010419900101123")
    rows = ndjson(
        penalty(1),
        penalty(
            2,
            party_category="自然人",
            credit_code=None,
            subject_name="王小明",
            party_id_number=person_id,
        ),
    )
    assert [o.outcome for o in run(engine, "penalty", rows)] == ["accepted", "accepted"]
    with engine.connect() as conn:
        stored = [
            orjson.dumps(d).decode() for d in conn.execute(select(record_versions.c.data)).scalars()
        ]
        kinds = sorted(conn.execute(select(records.c.subject_kind)).scalars())
    blob = "\n".join(stored)
    for secret in ("张三丰", builders.resident_id(), "王小明", person_id):
        assert secret not in blob
    assert "张*丰" in blob
    assert "王*明" in blob
    assert kinds == ["legal_person", "natural_person"]


def test_enterprise_record_without_credit_code_is_rejected(engine: Engine) -> None:
    outcomes = run(engine, "penalty", ndjson(penalty(1, credit_code=None)))
    assert outcomes[0].outcome == "rejected"
    assert "credit_code: required" in (outcomes[0].reason or "")


def test_registration_creates_and_updates_the_enterprise(engine: Engine) -> None:
    run(engine, "registration", ndjson(registration(1)))
    run(engine, "penalty", ndjson(penalty(1)))
    run(engine, "registration", ndjson(registration(1, status="注销")))
    with engine.connect() as conn:
        row = conn.execute(select(enterprises)).one()
    assert row.credit_code == builders.code(1)
    assert row.division_code == "510104"
    assert row.status == "deregistered"
    assert row.legal_rep_masked == "李*"
    assert row.registered_capital_fen == 100_000_000
    assert len(row.legal_rep_hash) == 64
    # created (1), touched by the penalty (2), re-registered (3)
    assert row.data_version == 3


CSV_HEADER = (
    "信息唯一标识,数据来源单位,行政相对人名称,行政相对人类别,统一社会信用代码,法定代表人,"
    "行政处罚决定书文号,违法行为类型,处罚类别,处罚内容,罚款金额(万元),处罚决定日期,"
    "公示截止期,处罚机关,处罚机关统一社会信用代码,程序类型\n"
)


def csv_line(n: int, fine: str = "0.5", date: str = "2025/03/05") -> str:
    return (
        f"C-{n},成都市生态环境局,成都测试{n}号有限公司,法人及非法人组织,{builders.code(n)},赵六,"
        f'成环罚〔2025〕{n}号,超标排放,"罚款、责令改正","罚款5000元,责令改正",{fine},{date},'
        f"2026-03-05,成都市生态环境局,{builders.AUTHORITY_CODE},普通程序\n"
    )


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_csv_with_chinese_headers_and_optional_bom(engine: Engine, bom: bytes) -> None:
    payload = bom + (CSV_HEADER + csv_line(1) + csv_line(2, fine="五千")).encode()
    outcomes = run(engine, "penalty", payload, fmt="csv")
    assert [(o.line, o.outcome) for o in outcomes] == [(2, "accepted"), (3, "rejected")]
    with engine.connect() as conn:
        detail = conn.execute(select(penalty_details)).one()
    assert detail.penalty_types == ["罚款", "责令改正"]
    assert detail.fine_fen == 500_000
    assert detail.procedure == "general"
    assert str(detail.decision_date) == "2025-03-05"


def test_csv_row_with_wrong_column_count_is_rejected_with_its_line(engine: Engine) -> None:
    payload = (CSV_HEADER + csv_line(1) + "only,three,columns\n" + csv_line(3)).encode()
    outcomes = run(engine, "penalty", payload, fmt="csv")
    assert [(o.line, o.outcome) for o in outcomes] == [
        (2, "accepted"),
        (3, "rejected"),
        (4, "accepted"),
    ]
    assert "expected 16 columns, got 3" in (outcomes[1].reason or "")


def test_ingest_file_writes_summary_and_rejects_file(settings: Settings, tmp_path: Path) -> None:
    from gateway.db import make_sync_engine
    from gateway.store.migrate import upgrade

    engine = make_sync_engine(settings)
    upgrade(engine)
    feed = tmp_path / "penalties.ndjson"
    feed.write_bytes(ndjson(penalty(1), penalty(2, decision_date="2025-02-30")) + b"\xff\xfe\n")
    assert ingest_file(settings, feed, "penalty", None, None, MARKET) == 0
    rejects = [
        orjson.loads(line)
        for line in (tmp_path / "penalties.ndjson.rejects.ndjson").read_bytes().splitlines()
    ]
    assert [r["line"] for r in rejects] == [2, 3]
    assert "not a calendar date" in rejects[0]["reason"]
    with engine.connect() as conn:
        run_row = conn.execute(select(ingest_runs)).one()
    assert (run_row.accepted, run_row.rejected, run_row.complete) == (1, 2, True)
    assert ingest_file(settings, feed, "no_such_category", None, None, MARKET) == 2
    engine.dispose()
