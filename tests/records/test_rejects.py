"""What a rejected line shows, in the rejects file and the API: its record id, nothing personal."""

from __future__ import annotations

from pathlib import Path

import orjson
from sqlalchemy import Engine

from gateway.db import make_sync_engine
from gateway.records.ingest_file import ingest_file
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from testkit import builders

PERSON_ID = builders.resident_id("51010419900101123")
REP_ID = builders.resident_id()
CSV = (
    "信息唯一标识,数据来源单位,行政相对人名称,行政相对人类别,统一社会信用代码,法定代表人,"
    "法定代表人证件号码,证件号码,联系电话,行政处罚决定书文号,违法事实,处罚类别,"
    "处罚决定日期,处罚机关\n"
    # A person's penalty with a date that does not exist.
    f"C-1,{builders.MARKET},王小明,自然人,,,,{PERSON_ID},13812345678,成公罚〔2025〕1号,"
    "当事人王小明（电话13812345678）无证经营,罚款,2025-02-30,成都市公安局\n"
    # An enterprise's, with a bad fine type: its legal representative is a person too.
    f"C-2,{builders.MARKET},成都测试2号有限公司,法人及非法人组织,{builders.code(2)},张三丰,"
    f"{REP_ID},,,成公罚〔2025〕2号,,,2025-03-06,成都市公安局\n"
    "C-3,成都市市场监督管理局,李四,自然人,only three\n"
)
SECRETS = ("王小明", "张三丰", "李四", PERSON_ID, REP_ID, "13812345678")


def rejects_of(settings: Settings, tmp_path: Path) -> list[dict[str, object]]:
    engine: Engine = make_sync_engine(settings)
    upgrade(engine)
    engine.dispose()
    feed = tmp_path / "penalties.csv"
    feed.write_text(CSV, encoding="utf-8")
    assert ingest_file(settings, feed, "penalty", None, None, builders.MARKET) == 0
    text = (tmp_path / "penalties.csv.rejects.ndjson").read_text(encoding="utf-8")
    for secret in SECRETS:
        assert secret not in text, secret
    return [orjson.loads(line) for line in text.splitlines()]


def test_the_rejects_file_names_the_given_record_id_and_masks_persons(
    settings: Settings, tmp_path: Path
) -> None:
    person, enterprise, short = rejects_of(settings, tmp_path)
    assert (person["line"], person["record_id"]) == (2, "C-1")
    assert "处罚决定日期" in str(person["reason"]) and "calendar date" in str(person["reason"])
    fields = person["fields"]
    assert isinstance(fields, dict)
    assert fields["行政相对人名称"] == "王*明"
    assert fields["证件号码"] == "*" * 14 + PERSON_ID[-4:]
    assert fields["违法事实"] == "当事人王*明（电话[redacted]）无证经营"
    assert "联系电话" not in fields  # a column the category does not read
    assert (enterprise["line"], enterprise["record_id"]) == (3, "C-2")
    shown = enterprise["fields"]
    assert isinstance(shown, dict)
    assert shown["行政相对人名称"] == "成都测试2号有限公司"  # an enterprise's name is public
    assert shown["法定代表人"] == "张*丰"
    assert shown["法定代表人证件号码"] == "*" * 14 + REP_ID[-4:]
    # A line that could not be read into fields shows nothing of itself.
    assert (short["line"], short["record_id"], short["fields"]) == (4, None, None)
    assert "columns" in str(short["reason"])
