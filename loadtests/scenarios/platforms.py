"""Financing platforms pushing into their adapters, signed as each platform signs.

科创通 Kechuangtong posts JSON webhooks with an HMAC over "{timestamp}.{body}";
农贷通 Nongdaitong posts GB18030 XML signed with RSA-SHA256 over the `<Body>`
bytes. The streams are the simulators' own: loan lifecycles with about 4 %
redeliveries and 3-4 % messages that authenticate but cannot be parsed, each
answered as the platform's spec says. Kechuangtong, the science-and-technology
platform, carries about three times Nongdaitong's volume (an assumption: the
platforms publish no message rates), hence the 3:1 task weights.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from loadtests.scenarios.demo_state import demo_state
from loadtests.scenarios.outcomes import fail, post_bytes, settle
from xyd_demo.simulators import kechuangtong as kct
from xyd_demo.simulators import nongdaitong as ndt

KCT_EXPECTED = {"valid": {200}, "duplicate": {200}, "malformed": {400}}


def fresh(message: kct.Message, tag: str) -> kct.Message:
    """The same event under ids of this user's own: users and runs must not redeliver
    each other's messages, or most of the load would be duplicates."""
    body = orjson.loads(message.raw)
    body["eventId"] = f"{tag}-{body['eventId']}"
    loan = body.get("loan")
    if isinstance(loan, dict) and isinstance(loan.get("applicationNo"), str):
        loan["applicationNo"] = f"{tag}-{loan['applicationNo']}"
    return kct.Message(orjson.dumps(body), body["eventId"], message.kind, message.event_type)


def kechuangtong_stream(tag: str, seed: int) -> Iterator[kct.Message]:
    while True:
        now = datetime.now(UTC)
        for message in kct.stream(500, seed=seed, start=now - timedelta(days=30), until=now):
            yield fresh(message, tag)
        seed += 1
        tag += "x"


def nongdaitong_stream(tag: str, seed: int) -> Iterator[ndt.Planned]:
    while True:
        yield from ndt.stream(seed, loans=80, prefix=f"NDT{tag}")
        seed += 1
        tag += "x"


class Platform(FastHttpUser):
    weight = 3
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        state = demo_state()
        self.kct_secret = (state.platform_dir("kechuangtong") / "secret").read_bytes().strip()
        self.ndt_sender = ndt.Sender.from_directory(state.platform_dir("nongdaitong"))
        tag = f"L{random.getrandbits(40):010x}"
        seed = random.getrandbits(30)
        self.kct = kechuangtong_stream(tag, seed)
        self.ndt = nongdaitong_stream(tag, seed)

    @task(3)
    def kechuangtong_webhook(self) -> None:
        message = next(self.kct)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-KCT-Event-Id": message.header_event_id,
            "X-KCT-Timestamp": stamp,
            "X-KCT-Signature": kct.sign(self.kct_secret, stamp, message.raw),
        }
        with post_bytes(
            self.client, kct.PATH, message.raw, headers=headers, name=f"{kct.PATH} ({message.kind})"
        ) as answer:
            settle(answer, KCT_EXPECTED[message.kind])

    @task(1)
    def nongdaitong_message(self) -> None:
        plan = next(self.ndt)
        # SendTime is stamped now: the gateway refuses a message 600 s off.
        raw = self.ndt_sender.message(plan)
        with post_bytes(
            self.client,
            ndt.PATH,
            raw,
            headers={"Content-Type": ndt.MEDIA_TYPE},
            name=f"{ndt.PATH} ({plan.kind})",
        ) as answer:
            if settle(answer, {200}) != 200:
                return
            code = ndt.Answer.parse(answer.content or b"").code
            if code != plan.expect:
                fail(answer, f"RspCode {code}, expected {plan.expect}")
