"""An empty cell is "not given": the same in every category, from CSV and NDJSON."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select

from gateway.records.readers import read_csv, read_ndjson
from gateway.records.schemas import SCHEMAS
from gateway.records.service import Ingestor, LineOutcome
from gateway.store.tables import records
from testkit import builders
from testkit.builders import ndjson, penalty, registration

KEY = b"test-pii-key"

# 双公示 as published: a 自然人 row leaves the credit code and legal representative blank.
PERSON_CSV = (
    "信息唯一标识,数据来源单位,行政相对人名称,行政相对人类别,统一社会信用代码,法定代表人,"
    "法定代表人证件号码,证件号码,行政处罚决定书文号,违法行为类型,处罚类别,罚款金额(万元),"
    "处罚决定日期,处罚机关,违法情节,程序类型\n"
    f"C-1,成都市公安局,王小明,自然人,,,,{builders.resident_id('51010419900101123')},"
    "成公罚〔2025〕1号,,罚款,0.05,2025-03-05,成都市公安局,,\n"
    f"C-2,成都市公安局,成都测试2号有限公司,法人及非法人组织,{builders.code(2)},赵六,,,"
    "成公罚〔2025〕2号,,罚款,,2025-03-06,成都市公安局,,\n"
)


def run(engine: Engine, category: str, payload: bytes, fmt: str = "ndjson") -> list[LineOutcome]:
    outcomes: list[LineOutcome] = []
    reader = read_ndjson if fmt == "ndjson" else read_csv
    Ingestor(engine, category, KEY, batch_size=10).run(
        reader(payload.splitlines(keepends=True)), source="test", on_outcome=outcomes.append
    )
    return outcomes


def test_a_natural_person_row_with_blank_cells_is_accepted_and_kept_out_of_reports(
    engine: Engine,
) -> None:
    outcomes = run(engine, "penalty", PERSON_CSV.encode(), fmt="csv")
    assert [(o.line, o.outcome, o.reason) for o in outcomes] == [
        (2, "accepted", None),
        (3, "accepted", None),
    ]
    with engine.connect() as conn:
        rows = conn.execute(
            select(records.c.source_record_id, records.c.credit_code, records.c.subject_kind)
            .order_by(records.c.source_record_id)
        ).all()  # fmt: skip
    # Stored without a credit code, as a person: no report selects it (README).
    assert [tuple(r) for r in rows] == [
        ("C-1", None, "natural_person"),
        ("C-2", builders.code(2), "legal_person"),
    ]


def test_blank_strings_in_ndjson_are_absent_too(engine: Engine) -> None:
    row = penalty(1, credit_code="", party_category="自然人", legal_rep_name="")
    row.update(legal_rep_id_number="", severity="", procedure="  ", fine_wan="")
    assert [o.outcome for o in run(engine, "penalty", ndjson(row))] == ["accepted"]


def test_a_blank_required_cell_is_named_as_missing(engine: Engine) -> None:
    outcomes = run(engine, "penalty", ndjson(penalty(1, decision_date="")))
    assert outcomes[0].outcome == "rejected"
    assert outcomes[0].reason == "decision_date: Field required"


@pytest.mark.parametrize("category", sorted(SCHEMAS))
def test_every_category_reads_an_all_blank_line_as_an_empty_one(category: str) -> None:
    schema = SCHEMAS[category]
    with pytest.raises(ValidationError) as blank:
        schema.model_validate({name: "" for name in schema.model_fields})
    # Only the required fields are reported, each as missing: no optional one is refused.
    assert {e["type"] for e in blank.value.errors()} == {"missing"}
    with pytest.raises(ValidationError) as empty:
        schema.model_validate({})
    assert blank.value.errors() != [] and len(blank.value.errors()) == len(empty.value.errors())


@pytest.mark.parametrize(
    ("category", "sample"), [("penalty", penalty(1)), ("registration", registration(1))]
)
def test_an_empty_optional_field_is_as_if_left_out(
    category: str, sample: dict[str, object]
) -> None:
    schema = SCHEMAS[category]
    for name, info in schema.model_fields.items():
        if info.is_required() or name == "credit_code":
            continue
        left_out = {k: v for k, v in sample.items() if k != name}
        for blank in ("", " ", None):
            assert schema.model_validate({**sample, name: blank}) == schema.model_validate(
                left_out
            ), (name, blank)
