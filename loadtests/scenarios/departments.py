"""Government departments delivering penalty records in NDJSON batches.

Each batch is mostly new records about the demo enterprises, with a few sent
again unchanged (duplicate), a few corrected (updated) and one in twenty with
a wrong check character (rejected), under an Idempotency-Key as the spec
asks; the answer must account for every line.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import orjson
from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from gateway.identifiers import make_credit_code, resident_id_check_char
from loadtests.scenarios.auth import TokenKeeper
from loadtests.scenarios.demo_state import demo_state
from loadtests.scenarios.outcomes import fail, post_bytes, settle

BATCH = 50
PATH = "/v1/records/penalty"
AUTHORITY_CODE = make_credit_code("1", "1", "510100", "00000001")
LEGAL_REP_ID = "51010419800101123" + resident_id_check_char("51010419800101123")


def penalty(record_id: str, code: str, n: int, fine_wan: str = "1.5") -> dict[str, Any]:
    return {
        "record_id": record_id,
        "source_department": "成都市市场监督管理局",
        "credit_code": code,
        "subject_name": f"成都压测{n}号有限公司",
        "party_category": "legal_person",
        "legal_rep_name": "张三丰",
        "legal_rep_id_number": LEGAL_REP_ID,
        "decision_number": f"成市监罚〔2026〕压{n}号",
        "violation_type": "虚假宣传",
        "legal_basis": "《中华人民共和国反不正当竞争法》第二十条",
        "penalty_types": ["罚款", "警告"],
        "content": f"罚款人民币{fine_wan}万元",
        "fine_wan": fine_wan,
        "severity": "general",
        "decision_date": "2026-06-01",
        "publication_until": "2027-06-01",
        "authority": "成都市市场监督管理局",
        "authority_code": AUTHORITY_CODE,
    }


def wrong_check_character(code: str) -> str:
    return code[:-1] + ("0" if code[-1] != "0" else "1")


class Department(FastHttpUser):
    weight = 1
    wait_time = between(3.0, 8.0)

    def on_start(self) -> None:
        state = demo_state()
        self.keeper = TokenKeeper(self.client, self.host or "", state.client("demo-department"))
        self.codes = state.credit_codes
        self.tag = f"LT{random.getrandbits(40):010x}"
        self.sent: list[dict[str, Any]] = []
        self.n = 0

    def batch(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for _ in range(BATCH):
            roll = random.random()
            if roll < 0.05 and self.sent:
                rows.append(random.choice(self.sent))  # resent unchanged
            elif roll < 0.08 and self.sent:
                rows.append({**random.choice(self.sent), "fine_wan": "2", "content": "罚款2万元"})
            else:
                self.n += 1
                row = penalty(f"{self.tag}-{self.n:07d}", random.choice(self.codes), self.n)
                if roll > 0.95:
                    row["credit_code"] = wrong_check_character(row["credit_code"])
                else:
                    self.sent.append(row)
                rows.append(row)
        del self.sent[:-500]
        return rows

    @task
    def deliver(self) -> None:
        rows = self.batch()
        body = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        headers = {**self.keeper.headers("POST", PATH), "Content-Type": "application/x-ndjson",
                   "Idempotency-Key": str(uuid.uuid4())}  # fmt: skip
        with post_bytes(self.client, PATH, body, headers=headers, name=PATH) as answer:
            if settle(answer, {200, 429}) == 200 and len(answer.json()["results"]) != len(rows):
                fail(answer, "the answer does not account for every line")
