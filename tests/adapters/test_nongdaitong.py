"""农贷通 Nongdaitong: the simulator's sender posts signed GB18030 XML to the served gateway."""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import httpx
import pytest
import yaml
from sqlalchemy import Engine, MetaData, func, select

from adapters.base import PlatformContext, PlatformServices, StoreUnavailable
from adapters.nongdaitong import adapter as nongdaitong_adapter
from adapters.nongdaitong import wire as nongdaitong
from adapters.nongdaitong.adapter import KeyRing, NongdaitongAdapter
from adapters.nongdaitong.wire import MAX_BODY_BYTES, redact
from gateway.app import create_app
from gateway.identifiers import is_valid_credit_code
from gateway.loans.ledger import fold
from gateway.pii import keyed_hash
from gateway.settings import Settings
from gateway.store.tables import consents, loan_events, loans, platform_dead_letters
from policies.consent import ConsentRules
from testkit.builders import register_enterprises
from testkit.clients import register
from testkit.live import serve
from testkit.platforms import build_adapter
from xyd_demo.simulators.nongdaitong import (
    PATH,
    Answer,
    Borrower,
    Children,
    Planned,
    Sender,
    render,
    send_all,
    send_demo,
    send_time,
    stream,
    write_demo_credentials,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"
ORG = Borrower("ORG", "92510112MA62Q7TN35", "双流区某某种植专业合作社")
PERSON = Borrower("PERSON", "510116198807154514", "欧阳䶮娜")
LOAN_NO = "NDT-L-2026-004512"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


@pytest.fixture(scope="module")
def sender() -> Sender:
    return Sender()


@pytest.fixture(scope="module")
def successor() -> Sender:
    return Sender()


@dataclass
class Gateway:
    url: str
    engine: Engine
    current_key: Path  # configured by absolute path
    next_key: Path  # configured relative to the state directory; absent at first
    client: httpx.Client

    def post(self, raw: bytes, **kwargs: Any) -> Answer:
        response = self.client.post(
            self.url + PATH, content=raw, headers={"Content-Type": "application/xml"}, **kwargs
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/xml; charset=GB18030"
        return Answer.parse(response.content)

    def count(self, table: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def loan(self, loan_no: str = LOAN_NO) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(loans).where(loans.c.loan_no == loan_no)).one()

    def rows(self, table: Any) -> list[Any]:
        order = list(table.primary_key.columns)
        with self.engine.connect() as conn:
            return list(conn.execute(select(table).order_by(*order)))


@pytest.fixture
def log_level() -> LogLevel:
    """The gateway's log level; the tests about what must never be logged raise it to DEBUG."""
    return "INFO"


@pytest.fixture
def gateway(
    log_level: LogLevel,
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
    sender: Sender,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Gateway]:
    keys = tmp_path / "keys"
    keys.mkdir()
    current = keys / "current.pem"
    current.write_bytes(sender.public_pem())
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    block = {"enabled": True, "public_keys": [str(current), "platform-keys/next.pem"]}
    (config / "platforms.yaml").write_text(yaml.safe_dump({"nongdaitong": block}))
    settings.config_dir = config
    settings.public_base_url = "http://testserver"
    settings.log_level = log_level
    app = create_app(settings)
    # create_app installs its own root handler; keep pytest's beside it.
    logging.getLogger().addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    next_key = settings.state_dir / "platform-keys" / "next.pem"
    with serve(app) as url, httpx.Client(timeout=httpx.Timeout(30, connect=5)) as client:
        yield Gateway(url, engine, current, next_key, client)


# --- message builders --------------------------------------------------------------------


def loan_block(amount: int | None = 30_000_000, loan_no: str = LOAN_NO) -> Children:
    block: Children = (("LoanNo", loan_no), ("BankCode", "CDRCB"), ("Product", "惠农贷"))
    if amount is not None:
        block = (*block, ("AmtFen", str(amount)))
    return (*block, ("TermMonths", "36"))


def auth_block(until: str | None = None) -> Children:
    until = until or time.strftime("%Y%m%d", time.localtime(time.time() + 60 * 86400))
    auth = (
        ("BankCode", "CDRCB"),
        ("Scopes", "basic,penalties,tax"),
        ("ValidUntil", until),
        ("DocSha256", "ab" * 32),
    )
    return (("Auth", auth),)


def repay_block(amount: int, days: int = 0, due: str = "20261220") -> Children:
    repay = (("DueDate", due), ("AmtFen", str(amount)), ("OverdueDays", str(days)))
    return (("Repay", repay),)


def registrable(plans: list[Planned]) -> list[str]:
    """The valid credit codes the plans' borrowers carry (authorisations need them registered)."""
    return [p.borrower.number for p in plans
            if p.borrower.kind == "ORG" and is_valid_credit_code(p.borrower.number)]  # fmt: skip


def plan(txn: str, msg_id: str, borrower: Borrower = ORG, **kwargs: Any) -> Planned:
    kwargs.setdefault("loan", loan_block())
    return Planned(txn, msg_id, borrower, **kwargs)


def head(txn: str = "NDT101", msg_id: str = "NDT-X-1", sent: str | None = None) -> str:
    fields: Children = (("Version", "1.2"), ("TxnCode", txn), ("MsgId", msg_id))
    fields = (*fields, ("SendTime", sent or send_time()))
    return f"  <Head>\n{render(fields)}\n  </Head>"


def body(borrower: Borrower = ORG, product: str = "惠农贷") -> str:
    loan = (("LoanNo", LOAN_NO), ("BankCode", "CDRCB"), ("Product", product))
    parts = (("Borrower", borrower.children()), ("Loan", (*loan, ("AmtFen", "100"))))
    return f"<Body>\n{render(parts)}\n  </Body>"


# --- the database, searched everywhere ---------------------------------------------------


def every_value(engine: Engine) -> Iterator[tuple[str, str, Any]]:
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    yield table.name, str(column), value


def holds(value: Any, needles: list[str]) -> bool:
    if value is None:
        return False
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return any(n.encode(enc) in data for n in needles for enc in ("utf-8", "gb18030"))
    texts = [str(value)]
    if isinstance(value, dict | list):
        texts.append(json.dumps(value, ensure_ascii=False))
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            texts.append(json.dumps(json.loads(value), ensure_ascii=False))
    return any(n in text for n in needles for text in texts)


def found_in_database(engine: Engine, needles: list[str]) -> list[tuple[str, str]]:
    return [(t, c) for t, c, v in every_value(engine) if holds(v, needles)]


# --- the tests ---------------------------------------------------------------------------


def test_every_txn_code_folds_into_the_ledger(
    gateway: Gateway, sender: Sender, engine: Engine
) -> None:
    register(engine, "bank-cdrcb", org_code="CDRCB")
    register_enterprises(engine, ORG.number)
    repaid, late = repay_block(1_000_000), repay_block(1_000_000, 15)
    steps: list[tuple[Planned, tuple[str, int | None, int, int]]] = [
        (plan("NDT101", "M1"), ("applied", 30_000_000, 0, 0)),
        (plan("NDT102", "M2", extra=auth_block()), ("applied", 30_000_000, 0, 0)),
        (plan("NDT201", "M3"), ("approved", 30_000_000, 0, 0)),
        (plan("NDT203", "M4"), ("disbursed", 30_000_000, 30_000_000, 0)),
        (plan("NDT301", "M5", extra=repaid), ("disbursed", 30_000_000, 29_000_000, 0)),
        (plan("NDT302", "M6", extra=late), ("overdue", 30_000_000, 29_000_000, 15)),
        (plan("NDT301", "M7", extra=late), ("disbursed", 30_000_000, 28_000_000, 0)),
        (plan("NDT304", "M8"), ("settled", 30_000_000, 0, 0)),
    ]
    for planned, (status, amount, outstanding, days) in steps:
        answer = gateway.post(sender.message(planned))
        assert (answer.code, answer.msg_id, answer.message) == ("0000", planned.msg_id, "成功")
        row = gateway.loan()
        assert (row.status, row.amount_fen, row.outstanding_fen, row.days_overdue) == (
            status,
            amount,
            outstanding,
            days,
        )
        assert (row.credit_code, row.bank_code, row.borrower_hash) == (ORG.number, "CDRCB", None)
    rejected = loan_block(loan_no="NDT-L-2026-000002")
    defaulted = loan_block(loan_no="NDT-L-2026-000003")
    for planned in (
        plan("NDT101", "R1", loan=rejected),
        plan("NDT202", "R2", loan=rejected),
        plan("NDT203", "D1", loan=defaulted),
        plan("NDT302", "D2", loan=defaulted, extra=repay_block(500_000, 95)),
        plan("NDT303", "D3", loan=defaulted),
    ):
        assert gateway.post(sender.message(planned)).code == "0000"
    assert gateway.loan("NDT-L-2026-000002").status == "rejected"
    assert gateway.loan("NDT-L-2026-000003").status == "defaulted"
    assert gateway.loan("NDT-L-2026-000003").days_overdue == 95

    events = {e.message_id: e for e in gateway.rows(loan_events)}
    assert len(events) == 13
    assert {e.event_type for e in events.values()} == set(nongdaitong.TXN_EVENTS.values())
    assert events["M2"].event_type == "consent_granted"
    assert events["M2"].details["auth_scopes"] == ["basic", "penalties", "tax"]
    assert (events["M6"].amount_fen, events["M6"].days_overdue) == (1_000_000, 15)
    assert events["M6"].due_date.isoformat() == "2026-12-20"
    assert events["M6"].details["loan_amount_fen"] == 30_000_000
    assert events["M1"].details["product"] == "惠农贷"
    (consent,) = gateway.rows(consents)
    assert (consent.credit_code, consent.grantee_org_code) == (ORG.number, "CDRCB")
    assert consent.evidence["document_sha256"] == "ab" * 32
    assert gateway.count(platform_dead_letters) == 0


def test_a_redelivery_is_0001_and_stored_once(gateway: Gateway, sender: Sender) -> None:
    first = plan("NDT101", "DUP-1")
    assert gateway.post(sender.message(first)).code == "0000"
    again = gateway.post(sender.message(first))  # redelivered later: a new SendTime
    assert (again.code, again.msg_id) == ("0001", "DUP-1")
    assert gateway.count(loan_events) == 1
    assert gateway.count(loans) == 1


def test_a_bad_signature_is_1001_and_nothing_is_kept(
    gateway: Gateway, sender: Sender, successor: Sender
) -> None:
    foreign = successor.message(plan("NDT101", "SIG-1"))
    tampered = sender.message(plan("NDT101", "SIG-2")).replace(b"30000000", b"90000000")
    garbled = sender.message(plan("NDT101", "SIG-3"))
    start = garbled.index(b"<Sign>") + 6
    garbled = garbled[:start] + b"!!" + garbled[start + 2 :]
    for raw in (foreign, tampered, garbled):
        answer = gateway.post(raw)
        assert answer.code == "1001", answer
    assert gateway.count(loan_events) == 0
    assert gateway.count(platform_dead_letters) == 0


def test_a_stale_or_future_send_time_is_1001(gateway: Gateway, sender: Sender) -> None:
    for offset in (-700, 700):
        raw = sender.message(plan("NDT101", f"OLD{offset}"), at=time.time() + offset)
        assert gateway.post(raw).code == "1001"
    assert gateway.count(loan_events) == 0
    assert gateway.count(platform_dead_letters) == 0
    recent = sender.message(plan("NDT101", "RECENT"), at=time.time() - 300)
    assert gateway.post(recent).code == "0000"


def test_invalid_values_are_named_and_dead_lettered(gateway: Gateway, sender: Sender) -> None:
    nameless = Borrower("ORG", "", "无代码合作社")
    negative = (*loan_block(None), ("AmtFen", "-5"))
    cases: list[tuple[Planned, str, str]] = [
        (replace(plan("NDT101", "V1"), defect="txn_code"), "1003", "Head/TxnCode"),
        (replace(plan("NDT101", "V2"), defect="credit_code"), "1003", "Body/Borrower/CreditCode"),
        (replace(plan("NDT101", "V3", PERSON), defect="id_check"), "1003", "Body/Borrower/IdNo"),
        (replace(plan("NDT203", "V4"), defect="amount"), "1003", "Body/Loan/AmtFen"),
        (plan("NDT203", "V5", loan=negative), "1003", "Body/Loan/AmtFen"),
        (plan("NDT302", "V6", extra=repay_block(100, 0)), "1003", "Body/Repay/OverdueDays"),
        (
            plan("NDT301", "V7", extra=repay_block(100, due="20261232")),
            "1003",
            "Body/Repay/DueDate",
        ),
        (plan("NDT102", "V8", extra=auth_block("20270230")), "1003", "Body/Auth/ValidUntil"),
        (replace(plan("NDT101", "V9"), defect="no_loan_no"), "1002", "Body/Loan/LoanNo"),
        (plan("NDT301", "V10"), "1002", "Body/Repay"),
        (plan("NDT101", "V11", nameless), "1002", "Body/Borrower/CreditCode"),
    ]
    sent = []
    for count, (planned, code, field) in enumerate(cases, start=1):
        sent.append(sender.message(planned))
        answer = gateway.post(sent[-1])
        assert (answer.code, answer.msg_id) == (code, planned.msg_id), field
        assert field in answer.message
        assert gateway.count(platform_dead_letters) == count
    bad_time = sender.envelope(head(sent="20261340101500"), body())
    answer = gateway.post(bad_time)
    assert answer.code == "1003"
    assert "Head/SendTime" in answer.message
    assert gateway.count(loan_events) == 0
    letters = gateway.rows(platform_dead_letters)
    assert len(letters) == len(cases) + 1
    assert all(letter.platform == "nongdaitong" for letter in letters)
    assert letters[3].reason.startswith("1003 Body/Loan/AmtFen")
    assert "V4" in letters[3].reason
    assert bytes(letters[3].raw) == sent[3]  # an enterprise's message is kept as sent


def test_xml_that_is_not_well_formed_is_1002(gateway: Gateway, sender: Sender) -> None:
    broken_head = sender.message(replace(plan("NDT101", "W1"), defect="broken_head"))
    assert gateway.post(broken_head).code == "1002"
    broken_body = sender.envelope(head(msg_id="W2"), body().replace("</Product>", "</Prodcut>"))
    assert gateway.post(broken_body).code == "1002"
    assert gateway.count(platform_dead_letters) == 2  # both authenticated
    assert bytes(gateway.rows(platform_dead_letters)[0].raw) == broken_head
    for garbage in (b"", b"not xml at all", b"<NDTMsg><Head/></NDTMsg>"):
        assert gateway.post(garbage).code == "1002"
    assert gateway.count(platform_dead_letters) == 2  # nothing signed: not kept
    assert gateway.count(loan_events) == 0


def test_the_bytes_must_be_gb18030(gateway: Gateway, sender: Sender) -> None:
    name = "双流区张三丰种植专业合作社"
    utf8 = sender.envelope(
        head(msg_id="E1"), body(Borrower("ORG", ORG.number, name)), encoding="utf-8"
    )
    with pytest.raises(UnicodeDecodeError):
        utf8.decode("gb18030")
    assert gateway.post(utf8).code == "1002"
    declared_utf8 = sender.envelope(head(msg_id="E2"), body(), declaration="UTF-8")
    assert gateway.post(declared_utf8).code == "1002"
    with_bom = b"\xef\xbb\xbf" + sender.envelope(head(msg_id="E3"), body())
    assert gateway.post(with_bom).code == "1002"
    assert gateway.count(platform_dead_letters) == 3
    assert gateway.count(loan_events) == 0
    gbk = sender.envelope(head(msg_id="E4"), body(), declaration="GBK")
    assert gateway.post(gbk).code == "0000"


def test_a_body_over_256_kib_is_refused_without_reading_it(
    gateway: Gateway, sender: Sender
) -> None:
    def padded(msg_id: str, size: int) -> bytes:
        bare = sender.envelope(head(msg_id=msg_id), body())
        comment = "<!--" + "x" * (size - len(bare) - 8) + "-->\n"
        raw = sender.envelope(head(msg_id=msg_id), body(), prolog=comment)
        assert len(raw) == size
        return raw

    assert gateway.post(padded("BIG-1", MAX_BODY_BYTES)).code == "0000"
    assert gateway.post(padded("BIG-2", MAX_BODY_BYTES + 1)).code == "1002"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the stream is cut off
        raw = padded("BIG-3", MAX_BODY_BYTES + 1)
        for at in range(0, len(raw), 16384):
            yield raw[at : at + 16384]

    response = gateway.client.post(gateway.url + PATH, content=chunks())
    assert response.status_code == 200
    answer = Answer.parse(response.content)
    assert (answer.code, answer.message) == ("1002", "报文超过 256 KiB")
    assert gateway.count(loan_events) == 1
    assert gateway.count(platform_dead_letters) == 0


def test_gb18030_names_and_rare_characters_survive(gateway: Gateway, sender: Sender) -> None:
    names = [
        "双流区某某种植专业合作社",
        "金堂县䶮农食用菌专业合作社",
        "大邑县𠀾田家庭农场",
        "新津区鑫㵘水产养殖场",
    ]
    for number, name in enumerate(names):
        borrower = Borrower("ORG", ORG.number, name)
        raw = sender.message(plan("NDT101", f"N{number}", borrower))
        assert name.encode("gb18030") in raw
        assert gateway.post(raw).code == "0000"
    stored = {e.message_id: e.details for e in gateway.rows(loan_events)}
    assert [stored[f"N{n}"]["borrower_name"] for n in range(len(names))] == names
    assert {d["product"] for d in stored.values()} == {"惠农贷"}


@pytest.mark.parametrize("log_level", ["DEBUG"])
def test_dtds_entities_and_bombs_are_refused_unread(
    gateway: Gateway,
    sender: Sender,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    passwd = Path("/etc/passwd").read_text().splitlines()[0]
    xxe = '<!DOCTYPE NDTMsg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    raw = sender.envelope(head(msg_id="X1"), body(product="&xxe;"), prolog=xxe)
    answers = [gateway.post(raw)]
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "&lol;") * 10}">' for i in range(1, 10)
    )
    bomb = sender.envelope(
        head(msg_id="X2"), body(product="&lol9;"), prolog=f"<!DOCTYPE NDTMsg [{lol}]>\n"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answers.append(gateway.post(bomb))
    # a billion expanded "lol"s would be gigabytes; the refusal costs next to nothing
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000
    unsigned = raw.replace(b"<Sign>", b"<Sign>AAAA")
    answers.append(gateway.post(unsigned))
    assert [(a.code, a.msg_id) for a in answers] == [("1002", "X1"), ("1002", "X2"), ("1001", "X1")]
    assert "DTD" in answers[0].message
    assert gateway.count(loan_events) == 0
    assert gateway.count(platform_dead_letters) == 2
    everywhere = [caplog.text, *capsys.readouterr(), *(a.message for a in answers)]
    assert not any(passwd in text for text in everywhere)
    assert not found_in_database(gateway.engine, [passwd, "lollollol"])


@pytest.mark.parametrize("log_level", ["DEBUG"])
def test_a_person_is_never_in_clear(
    gateway: Gateway,
    sender: Sender,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register(engine, "bank-cdrcb", org_code="CDRCB")
    person_loan = loan_block(loan_no="NDT-L-P-1")
    answers = [
        gateway.post(sender.message(p))
        for p in (
            plan("NDT101", "P1", PERSON, loan=person_loan),
            plan("NDT102", "P2", PERSON, loan=person_loan, extra=auth_block()),
            plan("NDT203", "P3", PERSON, loan=person_loan),
            replace(plan("NDT203", "P4", PERSON), defect="amount"),
            replace(plan("NDT203", "P5", PERSON), defect="id_check"),
            replace(plan("NDT203", "P6", PERSON), defect="broken_head"),
            plan("NDT203", "P7", PERSON, loan=(*loan_block(None), ("AmtFen", PERSON.number))),
        )
    ]
    unclosed = sender.envelope(
        head(msg_id="P8"), body(PERSON).replace(f"{PERSON.number}</IdNo>", PERSON.number)
    )
    answers.append(gateway.post(unclosed))
    assert [a.code for a in answers] == ["0000"] * 3 + ["1003", "1003", "1002", "1003", "1002"]
    expected = keyed_hash(b"test-pii-key", "person-id", PERSON.number)
    row = gateway.loan("NDT-L-P-1")
    assert (row.borrower_hash, row.credit_code, row.status) == (expected, None, "disbursed")
    assert {e.borrower_hash for e in gateway.rows(loan_events)} == {expected}
    assert gateway.count(consents) == 0  # a person's authorisation is not an enterprise consent
    letters = gateway.rows(platform_dead_letters)
    assert len(letters) == 5
    assert all(b"<IdNo>5101**************" in bytes(letter.raw) for letter in letters)

    needles = [PERSON.number, PERSON.number[:17], PERSON.number[4:], PERSON.name]
    assert not found_in_database(gateway.engine, needles)
    assert found_in_database(gateway.engine, ["惠农贷"])  # the search does find what is there
    out, err = capsys.readouterr()
    for text in (caplog.text, out, err, *(a.message for a in answers)):
        assert not any(n in text for n in needles)
    assert "nongdaitong message refused" in caplog.text


def test_two_keys_during_rotation(gateway: Gateway, sender: Sender, successor: Sender) -> None:
    assert gateway.post(successor.message(plan("NDT101", "K1"))).code == "1001"
    gateway.next_key.parent.mkdir(parents=True)
    gateway.next_key.write_bytes(successor.public_pem())
    assert gateway.post(sender.message(plan("NDT101", "K2"))).code == "0000"
    assert gateway.post(successor.message(plan("NDT101", "K3"))).code == "0000"
    gateway.current_key.unlink()  # the old key retired
    assert gateway.post(sender.message(plan("NDT101", "K4"))).code == "1001"
    assert gateway.post(successor.message(plan("NDT101", "K5"))).code == "0000"
    assert {e.message_id for e in gateway.rows(loan_events)} == {"K2", "K3", "K5"}


def test_without_a_key_or_a_store_the_answer_is_9999(
    gateway: Gateway, sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway.current_key.unlink()
    assert gateway.post(sender.message(plan("NDT101", "Z1"))).code == "9999"
    gateway.next_key.parent.mkdir(parents=True)
    gateway.next_key.write_bytes(sender.public_pem())
    assert gateway.post(sender.message(plan("NDT101", "Z1"))).code == "0000"

    async def unavailable(*_: Any) -> Any:
        raise StoreUnavailable("database is down")

    monkeypatch.setattr(nongdaitong_adapter, "receive", unavailable)
    assert gateway.post(sender.message(plan("NDT101", "Z2"))).code == "9999"
    assert gateway.count(loan_events) == 1
    assert gateway.count(platform_dead_letters) == 0


def test_the_endpoint_is_documented(gateway: Gateway) -> None:
    spec = gateway.client.get(gateway.url + "/openapi.json").json()
    operation = spec["paths"][PATH]["post"]
    assert operation["tags"] == ["platforms"]
    assert "application/xml" in operation["responses"]["200"]["content"]
    assert "9999" in operation["responses"]["200"]["description"]


def test_a_simulated_stream_lands_as_planned(
    gateway: Gateway, sender: Sender, engine: Engine
) -> None:
    for bank in ("CDRCB", "ABC-CD", "BOCD", "ICBC-CD"):
        register(engine, f"bank-{bank.lower()}", org_code=bank)
    plans = stream(seed=11, loans=18)
    register_enterprises(engine, *registrable(plans))
    kinds = {p.kind for p in plans}
    assert kinds == {"valid", "duplicate", "malformed"}
    assert {p.borrower.kind for p in plans} == {"ORG", "PERSON"}
    for planned, answer in send_all(sender, gateway.url, plans):
        assert (answer.code, answer.msg_id) == (planned.expect, planned.msg_id), planned
    valid = [p for p in plans if p.kind == "valid"]
    assert gateway.count(loan_events) == len(valid)
    assert gateway.count(platform_dead_letters) == sum(p.kind == "malformed" for p in plans)
    org_grants = [p for p in valid if p.txn == "NDT102" and p.borrower.kind == "ORG"]
    assert gateway.count(consents) == len(org_grants) > 0
    by_loan: dict[str, list[Any]] = {}
    for p in valid:
        if p.txn != "NDT102":
            by_loan.setdefault(str(dict(p.loan)["LoanNo"]), []).append(_as_event(p))
    for loan_no, events in by_loan.items():
        row = gateway.loan(loan_no)
        assert (row.status, row.outstanding_fen) == (
            fold(events)["status"],
            fold(events)["outstanding_fen"],
        )


def _as_event(p: Planned) -> SimpleNamespace:
    """What the ledger should have been told, read back from the plan."""
    repay = dict(p.extra).get("Repay")
    source = dict(repay) if isinstance(repay, tuple) else dict(p.loan)
    days = source.get("OverdueDays")
    return SimpleNamespace(
        event_type=nongdaitong.TXN_EVENTS[p.txn],
        amount_fen=int(str(source["AmtFen"])),
        days_overdue=None if days is None else int(str(days)),
    )


# --- pieces without a server ------------------------------------------------------------


def test_dead_letters_are_masked() -> None:
    raw = (
        "<Body><Borrower><Type>PERSON</Type><IdNo>510116198807154514</IdNo>"
        "<Name>欧阳䶮娜</Name></Borrower><Loan><LoanNo>x 11010119900307451X y</LoanNo>"
        "<AmtFen>30000000</AmtFen></Loan></Body>"
    ).encode("gb18030")
    masked = redact(raw)
    assert b"<IdNo>5101**************</IdNo>" in masked
    assert b"<Name>***</Name>" in masked
    assert b"1101**************" in masked
    assert b"<AmtFen>30000000</AmtFen>" in masked
    org = ("<Type>ORG</Type><Name>" + ORG.name + "</Name>").encode("gb18030")
    assert redact(org) == org
    unknown = ("<Type>person</Type><Name>" + PERSON.name + "</Name>").encode("gb18030")
    assert redact(unknown) == b"<Type>person</Type><Name>***</Name>"


def test_the_config_block_is_checked(tmp_path: Path) -> None:
    rules = ConsentRules.load(CONFIG / "consent.yaml")

    ctx = PlatformContext(PlatformServices(), rules, b"k", tmp_path)

    def build(block: dict[str, Any]) -> NongdaitongAdapter:
        return build_adapter("nongdaitong", block, ctx, NongdaitongAdapter)

    with pytest.raises(ValueError, match="public_keys"):
        build({"enabled": True})
    with pytest.raises(ValueError, match="public_keys"):
        build({"enabled": True, "public_keys": []})
    assert build({"enabled": True, "public_keys": ["missing.pem"]}).keys.current() == []
    with pytest.raises(ValueError, match="nongdaitong: unknown setting 'public_key'"):
        build({"enabled": True, "public_key": ["k.pem"]})


def test_weak_or_foreign_keys_are_not_used(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    weak = rsa.generate_private_key(65537, 1024).public_key()  # noqa: S505
    curve = ec.generate_private_key(ec.SECP256R1()).public_key()
    for name, key in (("weak.pem", weak), ("ec.pem", curve)):
        (tmp_path / name).write_bytes(
            key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    (tmp_path / "junk.pem").write_text("not a key")
    paths = [tmp_path / n for n in ("weak.pem", "ec.pem", "junk.pem")]
    assert KeyRing(paths).current() == []


def test_demo_credentials_sign_what_the_gateway_verifies(tmp_path: Path) -> None:
    write_demo_credentials(tmp_path)
    assert (tmp_path / "private.pem").stat().st_mode & 0o777 == 0o600
    sender = Sender.from_directory(tmp_path)
    (key,) = KeyRing([tmp_path / "public.pem"]).current()
    raw = sender.message(plan("NDT101", "DEMO"))
    signed, signature = nongdaitong.locate(raw)
    assert nongdaitong.verify([key], signed, signature)
    assert stream(seed=3, loans=5) == stream(seed=3, loans=5)


def test_the_demo_traffic_is_signed_with_the_demo_key(gateway: Gateway, tmp_path: Path) -> None:
    demo = tmp_path / "demo-credentials"
    write_demo_credentials(demo)
    gateway.current_key.write_bytes((demo / "public.pem").read_bytes())
    register_enterprises(gateway.engine, *registrable(stream(seed=5, loans=24 // 6 + 1)))
    counts = send_demo(gateway.url, demo, 24, seed=5)
    assert sum(counts.values()) == 24
    assert counts["0000"] == gateway.count(loan_events) == 18
    assert set(counts) <= {"0000", "0001", "1002", "1003"}
