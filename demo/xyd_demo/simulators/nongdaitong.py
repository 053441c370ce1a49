"""A stand-in for 农贷通 Nongdaitong: builds GB18030 XML messages, signs them, posts them.

The sender holds its own RSA 2048 key (generated, or read from the demo
credentials) and speaks the spec exactly: the signature is RSA PKCS#1 v1.5
SHA-256 over the encoded bytes from `<Body>` to `</Body>`. `stream(seed)`
plans a deterministic, realistic run of loans (ORG and PERSON borrowers,
authorisations, approvals and rejections, repayments, overdues, defaults,
settlements) with some redeliveries and some signed-but-invalid messages,
each with the answer the gateway owes it. `SendTime` is stamped when a
message is rendered, because the gateway refuses anything 600 s off.
"""

from __future__ import annotations

import base64
import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeXml
import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from gateway.identifiers import CREDIT_ALPHABET, make_credit_code, resident_id_check_char
from gateway.loans.events import BEIJING
from gateway.private_files import private_dir, write_private
from xyd_demo.simulators import Borrowers, pick

PATH = "/v1/platforms/nongdaitong/messages"
MEDIA_TYPE = "application/xml; charset=GB18030"
Children = tuple[tuple[str, "str | Children"], ...]
Defect = Literal[
    "txn_code", "amount", "credit_code", "id_check", "due_date", "no_loan_no", "broken_head"
]

ORG_NAMES = (
    "双流区某某种植专业合作社",
    "金堂县䶮农食用菌专业合作社",
    "大邑县𠀾田家庭农场",
    "蒲江县丰硕猕猴桃专业合作社",
    "崇州市稻香粮油有限公司",
    "新津区鑫㵘水产养殖场",
    "邛崃市黑猪养殖专业合作社",
)
PERSON_NAMES = ("张三丰", "李秀兰", "王建国", "刘䶮", "陈𠀾明", "杨桂芳", "赵德胜")
DIVISIONS = ("510116", "510121", "510129", "510131", "510184", "510118", "510183")
PRODUCTS = ("惠农贷", "农担贷", "家庭农场贷", "粮食种植贷", "生猪养殖贷")
BANKS = ("CDRCB", "CDRCB", "ABC-CD", "BOCD", "ICBC-CD")


def person_id(rng: random.Random) -> str:
    """A valid GB 11643 number from a Chengdu county, born 1960-1995."""
    born = date(1960, 1, 1) + timedelta(days=rng.randrange(36 * 365))
    first17 = f"{rng.choice(DIVISIONS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + resident_id_check_char(first17)


def org_credit_code(rng: random.Random) -> str:
    """A valid code for a company (91), individual business (92) or co-operative (93)."""
    body = "MA" + "".join(rng.choice(CREDIT_ALPHABET) for _ in range(6))
    return make_credit_code("9", rng.choice("123"), rng.choice(DIVISIONS), body)


@dataclass(frozen=True)
class Borrower:
    kind: Literal["ORG", "PERSON"]
    number: str  # credit code, or resident ID number
    name: str

    def children(self) -> Children:
        ident = "CreditCode" if self.kind == "ORG" else "IdNo"
        return (("Type", self.kind), (ident, self.number), ("Name", self.name))


@dataclass(frozen=True)
class Planned:
    """One message to send: what it says, and what the gateway must answer."""

    txn: str
    msg_id: str
    borrower: Borrower
    loan: Children = ()
    extra: Children = ()  # the <Auth> or <Repay> block
    defect: Defect | None = None
    kind: Literal["valid", "duplicate", "malformed"] = "valid"

    @property
    def expect(self) -> str:
        if self.kind == "duplicate":
            return "0001"
        if self.defect in ("no_loan_no", "broken_head"):
            return "1002"
        return "1003" if self.defect else "0000"


@dataclass(frozen=True)
class Answer:
    msg_id: str
    code: str
    message: str

    @classmethod
    def parse(cls, content: bytes) -> Answer:
        head = SafeXml.fromstring(content.decode("gb18030"), forbid_dtd=True).find("Head")
        if head is None:
            raise ValueError("answer without <Head>")
        return cls(
            head.findtext("MsgId") or "",
            head.findtext("RspCode") or "",
            head.findtext("RspMsg") or "",
        )


def render(children: Children, indent: str = "    ") -> str:
    lines = []
    for tag, value in children:
        if isinstance(value, str):
            lines.append(f"{indent}<{tag}>{escape(value)}</{tag}>")
        else:
            inner = render(value, indent + "  ")
            lines.append(f"{indent}<{tag}>\n{inner}\n{indent}</{tag}>")
    return "\n".join(lines)


def send_time(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, BEIJING).strftime(
        "%Y%m%d%H%M%S"
    )


@dataclass
class Sender:
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    @classmethod
    def from_directory(cls, directory: Path) -> Sender:
        key = serialization.load_pem_private_key((directory / "private.pem").read_bytes(), None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("private.pem is not an RSA key")
        return cls(key)

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, signed: bytes) -> str:
        signature = self.key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    def envelope(
        self,
        head: str,
        body: str,
        *,
        encoding: str = "gb18030",
        declaration: str = "GB18030",
        prolog: str = "",
    ) -> bytes:
        """A whole message from its Head and Body markup; the Body is signed as encoded."""
        body_bytes = body.encode(encoding)
        start = f'<?xml version="1.0" encoding="{declaration}"?>\n{prolog}<NDTMsg>\n{head}\n  '
        end = f"\n  <Sign>{self.sign(body_bytes)}</Sign>\n</NDTMsg>\n"
        return start.encode(encoding) + body_bytes + end.encode(encoding)

    def message(self, plan: Planned, *, at: float | None = None) -> bytes:
        txn = "NDT999" if plan.defect == "txn_code" else plan.txn
        head = render(
            (
                ("Version", "1.2"),
                ("TxnCode", txn),
                ("MsgId", plan.msg_id),
                ("SendTime", send_time(at)),
            ),
            "    ",
        )
        head = f"  <Head>\n{head}\n  </Head>"
        if plan.defect == "broken_head":
            head = head.replace("</TxnCode>", "</TxnCod>")
        parts: Children = (("Borrower", _defective(plan.borrower, plan.defect).children()),)
        if plan.loan:
            parts += (("Loan", _defective_loan(plan.loan, plan.defect)),)
        parts += _defective_extra(plan.extra, plan.defect)
        return self.envelope(head, f"<Body>\n{render(parts)}\n  </Body>")

    def post(self, client: httpx.Client, base_url: str, raw: bytes) -> Answer:
        response = client.post(base_url + PATH, content=raw, headers={"Content-Type": MEDIA_TYPE})
        response.raise_for_status()
        return Answer.parse(response.content)

    def send(
        self, client: httpx.Client, base_url: str, plan: Planned, *, attempts: int = 4
    ) -> Answer:
        """Post one planned message; on 9999 or a transport error retry, boundedly, with
        exponential back-off and jitter (the real platform keeps at it for 24 hours).
        Each attempt is a fresh message with a fresh SendTime, as the platform's are."""
        delay = 0.1
        for _ in range(attempts - 1):
            with contextlib.suppress(httpx.TransportError):
                answer = self.post(client, base_url, self.message(plan))
                if answer.code != "9999":
                    return answer
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(4.0, delay * 2)
        return self.post(client, base_url, self.message(plan))


def _defective(borrower: Borrower, defect: Defect | None) -> Borrower:
    if defect == "credit_code" and borrower.kind == "ORG":
        wrong = next(c for c in "0123456789" if c != borrower.number[-1])
        return replace(borrower, number=borrower.number[:17] + wrong)
    if defect == "id_check" and borrower.kind == "PERSON":
        wrong = next(c for c in "0123456789" if c != borrower.number[-1])
        return replace(borrower, number=borrower.number[:17] + wrong)
    return borrower


def _defective_loan(loan: Children, defect: Defect | None) -> Children:
    if defect == "amount":
        return tuple((t, "12.50" if t == "AmtFen" else v) for t, v in loan)
    if defect == "no_loan_no":
        return tuple((t, v) for t, v in loan if t != "LoanNo")
    return loan


def _defective_extra(extra: Children, defect: Defect | None) -> Children:
    if defect != "due_date":
        return extra
    return tuple(
        (t, tuple((k, "20260230" if k in ("DueDate", "ValidUntil") else v) for k, v in value))
        if not isinstance(value, str)
        else (t, value)
        for t, value in extra
    )


# --- a realistic stream --------------------------------------------------------------


class _Plan:
    def __init__(self, rng: random.Random, prefix: str) -> None:
        self.rng, self.prefix, self.seq = rng, prefix, 0
        self.items: list[Planned] = []

    def add(self, txn: str, borrower: Borrower, loan: Children, extra: Children = ()) -> None:
        self.seq += 1
        plan = Planned(txn, f"{self.prefix}{self.seq:09d}", borrower, loan, extra)
        roll = self.rng.random()
        if roll < 0.04:
            defect = self.rng.choice(self._defects(borrower, loan, extra))
            self.items.append(replace(plan, defect=defect, kind="malformed"))
            return
        self.items.append(plan)
        if roll > 0.95:
            self.items.append(replace(plan, kind="duplicate"))

    @staticmethod
    def _defects(borrower: Borrower, loan: Children, extra: Children) -> list[Defect]:
        defects: list[Defect] = ["txn_code", "broken_head", "no_loan_no"]
        defects.append("credit_code" if borrower.kind == "ORG" else "id_check")
        if any(tag == "AmtFen" for tag, _ in loan):
            defects.append("amount")
        if extra:
            defects.append("due_date")
        return defects


def stream(
    seed: int = 7, loans: int = 40, *, prefix: str | None = None, borrowers: Borrowers = ()
) -> list[Planned]:
    """The planned messages of `loans` loans, in sending order (organisations among
    the borrowers are `borrowers`, when given)."""
    rng = random.Random(seed)
    plan = _Plan(rng, prefix or f"NDT{seed:04d}")
    for number in range(loans):
        org = pick(borrowers, number) if borrowers else None
        _one_loan(plan, rng, f"NDT-L-{seed:04d}-{number:06d}", org)
    return plan.items


def _one_loan(
    plan: _Plan, rng: random.Random, loan_no: str, org: tuple[str, str] | None = None
) -> None:
    if rng.random() < 0.7:
        borrower = Borrower("ORG", org_credit_code(rng), rng.choice(ORG_NAMES))
        if org is not None:
            borrower = Borrower("ORG", *org)
    else:
        borrower = Borrower("PERSON", person_id(rng), rng.choice(PERSON_NAMES))
    bank, product = rng.choice(BANKS), rng.choice(PRODUCTS)
    amount = rng.randrange(50, 3000) * 1_000_000  # 5,000 to 300,000 yuan, in fen
    term = rng.choice((12, 24, 36))
    loan: Children = (
        ("LoanNo", loan_no),
        ("BankCode", bank),
        ("Product", product),
        ("AmtFen", str(amount)),
        ("TermMonths", str(term)),
    )
    plan.add("NDT101", borrower, loan)
    if rng.random() < 0.8:
        until = date.today() + timedelta(days=rng.choice((30, 60, 90)))
        auth = (
            ("BankCode", bank),
            ("Scopes", "basic,penalties,tax"),
            ("ValidUntil", f"{until:%Y%m%d}"),
            ("DocSha256", f"{rng.getrandbits(256):064x}"),
        )
        plan.add("NDT102", borrower, loan, (("Auth", auth),))
    if rng.random() < 0.15:
        plan.add("NDT202", borrower, loan)
        return
    plan.add("NDT201", borrower, loan)
    plan.add("NDT203", borrower, loan)
    _repayments(plan, rng, borrower, loan, amount, term)


def _repayments(
    plan: _Plan, rng: random.Random, borrower: Borrower, loan: Children, amount: int, term: int
) -> None:
    instalment = amount // term
    due = date.today().replace(day=20)
    for month in range(rng.randrange(1, 4)):
        due_text = f"{due + timedelta(days=30 * month):%Y%m%d}"
        if rng.random() < 0.12:
            days = rng.randrange(1, 120)
            repay = (("DueDate", due_text), ("AmtFen", str(instalment)), ("OverdueDays", str(days)))
            plan.add("NDT302", borrower, loan, (("Repay", repay),))
            if days > 90:
                plan.add("NDT303", borrower, loan)
                return
        repay = (("DueDate", due_text), ("AmtFen", str(instalment)), ("OverdueDays", "0"))
        plan.add("NDT301", borrower, loan, (("Repay", repay),))
    if rng.random() < 0.4:
        plan.add("NDT304", borrower, loan)


def send_all(
    sender: Sender, base_url: str, plans: list[Planned], *, timeout: float = 10.0
) -> Iterator[tuple[Planned, Answer]]:
    """Send each planned message in order over one connection; yield its answer."""
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client:
        for plan in plans:
            yield plan, sender.send(client, base_url, plan)


def write_demo_credentials(directory: Path) -> None:
    """`private.pem` (the platform's signing key) and `public.pem` (what the gateway reads)."""
    private_dir(directory)
    sender = Sender()
    write_private(directory / "private.pem", sender.private_pem())
    write_private(directory / "public.pem", sender.public_pem())


def send_demo(
    base_url: str,
    directory: Path,
    messages: int,
    *,
    seed: int | None = None,
    borrowers: Borrowers = (),
) -> dict[str, int]:
    """The demo's traffic: `messages` messages signed with the demo key; counts by RspCode.

    Seeded by the clock unless told, so a second run sends new loans, not redeliveries.
    """
    seed = int(time.time()) if seed is None else seed
    plans = stream(seed, loans=max(1, messages // 6 + 1), borrowers=borrowers)[:messages]
    counts: dict[str, int] = {}
    for _, answer in send_all(Sender.from_directory(directory), base_url, plans):
        counts[answer.code] = counts.get(answer.code, 0) + 1
    return counts
