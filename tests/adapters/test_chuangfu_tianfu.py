"""Chuangfu Tianfu over real HTTP: the simulator signs and posts, the served gateway stores."""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Engine, Table, func, select, text

from adapters.base import PlatformContext, PlatformServices
from adapters.chuangfu_tianfu.adapter import MAX_BODY_BYTES, ChuangfuTianfu
from gateway.app import create_app
from gateway.identity import jose
from gateway.loans.events import BEIJING
from gateway.settings import Settings
from gateway.store.tables import consents, loan_events, loans, platform_dead_letters
from policies.consent import ConsentRules
from testkit.builders import codes_in, register_enterprises
from testkit.clients import register
from testkit.live import serve
from testkit.platforms import build_adapter
from xyd_demo.simulators.chuangfu_tianfu import KID, Sender, Simulator, write_demo_credentials

KEY = "chuangfu-tianfu"
CONFIG = Path(__file__).resolve().parents[2] / "config"
CODE = "91510104MA6CK3L18K"
BODY: dict[str, Any] = {
    "unified_credit_code": CODE,
    "company_name": "成都某某文化传媒有限公司",
    "loan_no": "CFTF-LN-0093321",
    "bank_code": "ICBC-CD",
    "amount_wan": "150.00",
    "term_months": 12,
}
PROBLEM = "application/problem+json"
JOSE = "application/jose"


@dataclass
class Live:
    base: str
    sender: Sender
    sim: Simulator
    engine: Engine


@contextlib.contextmanager
def running(
    settings: Settings,
    tmp_path: Path,
    *,
    jwks_file: Path | None = None,
    jwks_url: str | None = None,
) -> Iterator[str]:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, dirs_exist_ok=True)
    block = {"enabled": True, "jwks_file": jwks_file and str(jwks_file), "jwks_url": jwks_url}
    (config / "platforms.yaml").write_text(yaml.safe_dump({KEY: block}), encoding="utf-8")
    settings.config_dir = config
    settings.public_base_url = "http://testserver"
    settings.run_background = False
    with serve(create_app(settings)) as base:
        yield base


@pytest.fixture
def sim() -> Simulator:
    return Simulator(seed=11)


@pytest.fixture
def live(settings: Settings, engine: Engine, tmp_path: Path, sim: Simulator) -> Iterator[Live]:
    jwks = tmp_path / "platform" / "jwks.json"
    jwks.parent.mkdir()
    jwks.write_text(json.dumps(sim.jwks()), encoding="utf-8")
    with running(settings, tmp_path, jwks_file=jwks) as base:
        sender = Sender(base)
        yield Live(base, sender, sim, engine)
        sender.close()


def count(engine: Engine, table: Table, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def loan(engine: Engine, loan_no: str = BODY["loan_no"]) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(loans).where(loans.c.platform == KEY, loans.c.loan_no == loan_no)
        ).one()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == status
    assert {"type", "title", "detail"} <= problem.keys()


def assert_rejected(live: Live, response: httpx.Response, reason: str, msg_id: str | None) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(JOSE)
    ack = live.sender.ack(response)
    assert ack["status"] == "rejected"
    assert reason in ack["reason"], ack["reason"]
    assert ack["msg_id"] == msg_id


# --- accepted messages ----------------------------------------------------------------


def test_every_message_type_is_stored_and_folded_into_the_loan(live: Live) -> None:
    register_enterprises(live.engine, CODE)
    register(live.engine, "bank-icbc", org_code="ICBC-CD")
    until = (date.today() + timedelta(days=60)).isoformat()
    authorization = {"bank_code": "ICBC-CD", "scopes": ["basic", "licenses"], "valid_until": until}
    steps: list[tuple[str, dict[str, Any], str, int]] = [
        ("loan.applied", {}, "applied", 0),
        ("loan.authorized", {"authorization": authorization}, "applied", 0),
        ("loan.approved", {}, "approved", 0),
        ("loan.disbursed", {}, "disbursed", 150_000_000),
        ("repayment.received", {"amount_wan": "12.5"}, "disbursed", 137_500_000),
        (
            "repayment.overdue",
            {"amount_wan": "12.500001", "due_date": "2026-10-20", "days_overdue": 31},
            "overdue",
            137_500_000,
        ),
        ("loan.defaulted", {}, "defaulted", 137_500_000),
        ("loan.settled", {}, "settled", 0),
    ]
    for n, (msg_type, extra, status, outstanding) in enumerate(steps):
        msg_id = f"CFTF-20261120-{n:05d}"
        response = live.sender.post(live.sim.message(msg_type, {**BODY, **extra}, msg_id=msg_id))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(JOSE)
        ack = live.sender.ack(response)
        assert (ack["msg_id"], ack["status"], ack["reason"]) == (msg_id, "accepted", None)
        row = loan(live.engine)
        assert (row.status, row.outstanding_fen) == (status, outstanding), msg_type
    row = loan(live.engine)
    assert (row.credit_code, row.bank_code, row.amount_fen) == (CODE, "ICBC-CD", 150_000_000)

    refused = {**BODY, "loan_no": "CFTF-LN-0093322"}
    live.sender.post(live.sim.message("loan.rejected", refused, msg_id="CFTF-20261120-R"))
    assert loan(live.engine, "CFTF-LN-0093322").status == "rejected"

    assert count(live.engine, loan_events) == 9
    with live.engine.connect() as conn:
        kinds = set(conn.execute(select(loan_events.c.event_type)).scalars())
        overdue = conn.execute(
            select(loan_events).where(loan_events.c.event_type == "repayment_overdue")
        ).one()
        grant = conn.execute(select(consents)).one()
    assert len(kinds) == 9
    assert (overdue.amount_fen, overdue.days_overdue) == (12_500_001, 31)
    assert overdue.due_date == date(2026, 10, 20)
    assert overdue.details == {"company_name": BODY["company_name"], "term_months": 12}
    assert (grant.credit_code, grant.grantee_org_code) == (CODE, "ICBC-CD")
    assert grant.registrant_client_id == f"platform:{KEY}"
    assert sorted(grant.scopes) == ["basic", "licenses"]
    assert count(live.engine, platform_dead_letters) == 0


def test_a_redelivery_is_stored_once_and_acknowledged_as_duplicate(live: Live) -> None:
    token = live.sim.message("loan.disbursed", BODY, msg_id="CFTF-DUP-1")
    resigned = live.sim.message("loan.disbursed", BODY, msg_id="CFTF-DUP-1")
    statuses = []
    for delivery in (token, token, resigned):
        response = live.sender.post(delivery)
        assert response.status_code == 200
        statuses.append(live.sender.ack(response)["status"])
    assert statuses == ["accepted", "duplicate", "duplicate"]
    assert count(live.engine, loan_events) == 1
    assert count(live.engine, platform_dead_letters) == 0


def test_a_message_over_the_jose_token_cap_but_within_64_kib_is_accepted(live: Live) -> None:
    token = live.sim.message("loan.applied", {**BODY, "remarks": "备注" * 6000})
    assert jose.MAX_TOKEN_BYTES < len(token) <= MAX_BODY_BYTES
    response = live.sender.post(token)
    assert live.sender.ack(response)["status"] == "accepted"
    assert count(live.engine, loan_events) == 1


def test_a_realistic_stream_gets_the_answers_the_platform_expects(live: Live) -> None:
    expected: dict[str, int] = {"accepted": 0, "duplicate": 0, "rejected": 0}
    messages = list(live.sim.stream(20))
    # The enterprises the platform names are in the registry (authorisations need them).
    payloads = [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in
                (m.token.split(".")[1] for m in messages)]  # fmt: skip
    register_enterprises(live.engine, *codes_in(*payloads))
    for message in messages:
        response = live.sender.post(message.token)
        ack = live.sender.ack(response)
        assert (ack["msg_id"], ack["status"]) == (message.msg_id, message.expect), ack
        expected[message.expect] += 1
    assert min(expected.values()) > 0, expected
    assert count(live.engine, loan_events) == expected["accepted"]
    assert count(live.engine, platform_dead_letters) == expected["rejected"]
    assert count(live.engine, loans) == 20


# --- refused before the signature verified: 401, nothing kept ------------------------


def forge(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    head, body = b64(orjson.dumps(header)), b64(orjson.dumps(payload))
    mac = b"" if secret is None else hmac.new(secret, f"{head}.{body}".encode(), "sha256").digest()
    return f"{head}.{body}.{b64(mac)}"


def forgeries(sim: Simulator) -> dict[str, str]:
    envelope = sim.envelope("loan.disbursed", BODY)
    public = sim.keys[KID].public_key()
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    attacker = Simulator(seed=99, kid=KID)  # the platform's kid, someone else's key
    attacker_jwk = jose.public_jwk(attacker.keys[KID])
    head, _, signature = sim.sign(envelope).split(".")
    other_payload = sim.sign(sim.envelope("loan.disbursed", {**BODY, "amount_wan": "9999"}))
    flipped = signature[:20] + ("A" if signature[20] != "A" else "B") + signature[21:]
    hs256 = {"alg": "HS256", "kid": KID, "typ": "JOSE"}
    return {
        "bad signature": f"{head}.{sim.sign(envelope).split('.')[1]}.{flipped}",
        "payload swapped": f"{head}.{other_payload.split('.')[1]}.{signature}",
        "alg none": forge({"alg": "none", "kid": KID, "typ": "JOSE"}, envelope, None),
        "HS256 with the public PEM": forge(hs256, envelope, pem),
        "HS256 with the public JWK": forge(hs256, envelope, json.dumps(sim.jwks()).encode()),
        "HS256 with the x coordinate": forge(hs256, envelope, unb64(sim.jwks()["keys"][0]["x"])),
        "embedded jwk": attacker.sign(envelope, header={"jwk": attacker_jwk}),
        "embedded jwk, real key": sim.sign(envelope, header={"jwk": jose.public_jwk(public)}),
        "jku": sim.sign(envelope, header={"jku": "http://127.0.0.1:1/jwks.json"}),
        "x5u": sim.sign(envelope, header={"x5u": "http://127.0.0.1:1/cert.pem"}),
        "x5c": sim.sign(envelope, header={"x5c": ["MIIB"]}),
        "crit": sim.sign(envelope, header={"crit": ["exp"], "exp": 1}),
        "lower-case alg": sim.sign(envelope, header={"alg": "es256"}),
        "ES384 claimed": sim.sign(envelope, header={"alg": "ES384"}),
        "unknown kid": Simulator(seed=5, kid="cftf-2099-9").sign(envelope),
        "no kid": sim.sign(envelope, header={"kid": None}),
        "right kid, wrong key": attacker.sign(envelope),
        "not a JWS": "hello",
        "two parts": ".".join(sim.sign(envelope).split(".")[:2]),
    }


def test_a_message_whose_signature_does_not_verify_gets_401_and_nothing_is_kept(
    live: Live,
) -> None:
    for case, token in forgeries(live.sim).items():
        response = live.sender.post(token)
        assert response.status_code == 401, case
        assert_problem(response, 401)
        assert not response.headers["content-type"].startswith(JOSE), case
    assert count(live.engine, loan_events) == 0
    assert count(live.engine, platform_dead_letters) == 0
    # The genuine article still passes: the refusals were about the forgeries.
    genuine = live.sender.post(live.sim.message("loan.disbursed", BODY))
    assert live.sender.ack(genuine)["status"] == "accepted"


def test_transport_errors_are_problems(live: Live) -> None:
    token = live.sim.message("loan.applied", {**BODY, "remarks": "x" * MAX_BODY_BYTES})
    assert_problem(live.sender.post(token), 413)
    just_over = b"a" * (MAX_BODY_BYTES + 1)
    assert_problem(live.sender.post(just_over), 413)
    chunked = live.sender.client.post(  # no Content-Length: the limit holds while streaming
        live.base + "/v1/platforms/chuangfu-tianfu/messages",
        content=iter([b"a" * 8192] * 16),
        headers={"Content-Type": JOSE},
    )
    assert "content-length" not in chunked.request.headers
    assert_problem(chunked, 413)
    valid = live.sim.message("loan.applied", BODY)
    assert_problem(live.sender.post(valid, content_type="application/json"), 415)
    assert count(live.engine, loan_events) == 0
    assert count(live.engine, platform_dead_letters) == 0


# --- verified but refused: a signed `rejected`, dead-lettered ------------------------


def test_a_stale_or_future_sent_at_is_rejected_with_a_signed_ack(live: Live) -> None:
    now = datetime.now(BEIJING).replace(microsecond=0)
    for n, skew in enumerate((-601, 700)):
        msg_id = f"CFTF-SKEW-{n}"
        sent = now + timedelta(seconds=skew)
        token = live.sim.message("loan.disbursed", BODY, msg_id=msg_id, sent_at=sent)
        assert_rejected(live, live.sender.post(token), "header.sent_at", msg_id)
    assert count(live.engine, loan_events) == 0
    assert count(live.engine, platform_dead_letters) == 2
    recent = live.sim.message("loan.disbursed", BODY, sent_at=now - timedelta(seconds=590))
    assert live.sender.ack(live.sender.post(recent))["status"] == "accepted"


def test_invalid_content_is_rejected_with_the_reason_and_dead_lettered(live: Live) -> None:
    sim = live.sim
    no_id = sim.envelope("loan.disbursed", BODY)
    del no_id["header"]["msg_id"]
    overdue = {**BODY, "due_date": "2026-10-20"}
    cases: list[tuple[str, str, str | None]] = [
        (sim.message("loan.restructured", BODY, msg_id="M1"), "header.msg_type", "M1"),
        (
            sim.message(
                "loan.disbursed", {**BODY, "unified_credit_code": CODE[:-1] + "J"}, msg_id="M2"
            ),
            "body.unified_credit_code",
            "M2",
        ),
        (
            sim.message("loan.disbursed", {**BODY, "amount_wan": "150.1234567"}, msg_id="M3"),
            "body.amount_wan",
            "M3",
        ),
        (sim.sign(no_id), "header.msg_id: missing", None),
        (sim.message("loan.disbursed", {**BODY, "amount_wan": 150}, msg_id="M5"), "amount", "M5"),
        (sim.message("repayment.overdue", overdue, msg_id="M6"), "body.days_overdue", "M6"),
        (sim.message("loan.authorized", BODY, msg_id="M7"), "body.authorization", "M7"),
        (sim.message("loan.approved", {**BODY, "bank_code": "icbc cd"}, msg_id="M8"), "bank", "M8"),
        (sim.message("loan.settled", {**BODY, "loan_no": None}, msg_id="M9"), "loan_no", "M9"),
        (sim.sign(b"not json"), "payload", None),
    ]
    for token, reason, msg_id in cases:
        assert_rejected(live, live.sender.post(token), reason, msg_id)
    assert count(live.engine, loan_events) == 0
    assert count(live.engine, platform_dead_letters) == len(cases)
    with live.engine.connect() as conn:
        first = conn.execute(select(platform_dead_letters).order_by(platform_dead_letters.c.id))
        letter = first.first()
    assert letter is not None
    assert (letter.platform, bytes(letter.raw)) == (KEY, cases[0][0].encode())
    assert "header.msg_type" in letter.reason


def test_the_acknowledgement_verifies_with_the_gateway_jwks_alone(live: Live) -> None:
    accepted = live.sender.post(live.sim.message("loan.disbursed", BODY, msg_id="ACK-1"))
    bad = {**BODY, "amount_wan": "1.1234567"}
    rejected = live.sender.post(live.sim.message("loan.disbursed", bad, msg_id="ACK-2"))
    jwks = httpx.get(live.base + "/.well-known/jwks.json", timeout=10).json()
    for response, status in ((accepted, "accepted"), (rejected, "rejected")):
        head, payload, signature = response.text.split(".")
        header = json.loads(unb64(head))
        assert header["alg"] == "ES256" and header["typ"] == "JOSE"
        jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
        key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(unb64(jwk["x"]), "big"),
            int.from_bytes(unb64(jwk["y"]), "big"),
            ec.SECP256R1(),
        ).public_key()
        raw = unb64(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        key.verify(der, f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
        claims = json.loads(unb64(payload))
        assert set(claims) == {"msg_id", "status", "reason", "acked_at"}
        assert claims["status"] == status
        assert datetime.fromisoformat(claims["acked_at"]).utcoffset() == timedelta(hours=8)
        tampered = bytearray(unb64(payload))
        tampered[tampered.index(b"ACK-")] ^= 0x01
        with pytest.raises(InvalidSignature):
            key.verify(der, f"{head}.{b64(bytes(tampered))}".encode(), ec.ECDSA(hashes.SHA256()))


def test_a_store_that_cannot_take_the_message_answers_503(live: Live) -> None:
    with live.engine.begin() as conn:
        conn.execute(text("DROP TABLE loan_events"))
    response = live.sender.post(live.sim.message("loan.disbursed", BODY))
    assert_problem(response, 503)


# --- the platform's key set ------------------------------------------------------------


def test_an_unknown_kid_refetches_the_jwks_url_at_most_once_a_minute(
    settings: Settings, engine: Engine, tmp_path: Path, sim: Simulator
) -> None:
    with (
        serve(sim.jwks_app()) as platform,
        running(settings, tmp_path, jwks_url=platform + "/jwks.json") as base,
    ):
        sender = Sender(base)
        assert sender.ack(sender.post(sim.message("loan.applied", BODY)))["status"] == "accepted"
        assert sim.jwks_fetches == 1
        sim.add_key("cftf-2026-2")  # the platform rotates
        assert sender.ack(sender.post(sim.message("loan.approved", BODY)))["status"] == "accepted"
        assert sim.jwks_fetches == 2
        sim.add_key("cftf-2026-3")  # again, within the minute: no refetch
        assert_problem(sender.post(sim.message("loan.disbursed", BODY)), 401)
        assert sim.jwks_fetches == 2
        sim.kid = KID  # known kids need no fetch
        assert sender.ack(sender.post(sim.message("loan.disbursed", BODY)))["status"] == "accepted"
        assert sim.jwks_fetches == 2
        sender.close()
    assert count(engine, loan_events) == 3


def test_a_redirecting_jwks_url_is_not_followed(
    settings: Settings, tmp_path: Path, sim: Simulator
) -> None:
    with (
        serve(sim.jwks_app()) as platform,
        running(settings, tmp_path, jwks_url=platform + "/moved") as base,
    ):
        sender = Sender(base)
        response = sender.post(sim.message("loan.applied", BODY))
        sender.close()
    assert_problem(response, 503)
    assert sim.jwks_fetches == 0


def test_a_missing_jwks_file_answers_503_until_it_appears(
    settings: Settings, engine: Engine, tmp_path: Path, sim: Simulator
) -> None:
    demo = tmp_path / "demo" / KEY
    with running(settings, tmp_path, jwks_file=demo / "jwks.json") as base:
        sender = Sender(base)
        response = sender.post(sim.message("loan.applied", BODY))
        assert_problem(response, 503)
        assert "Retry-After" in response.headers
        demo.mkdir(parents=True)
        (demo / "jwks.json").write_text("{", encoding="utf-8")  # caught mid-write
        assert_problem(sender.post(sim.message("loan.applied", BODY)), 503)
        write_demo_credentials(demo)
        demo_platform = Simulator.from_private_jwk(demo / "private.jwk")
        response = sender.post(demo_platform.message("loan.applied", BODY))
        assert sender.ack(response)["status"] == "accepted"
        sender.close()
    assert (demo / "private.jwk").stat().st_mode & 0o077 == 0
    assert count(engine, loan_events) == 1


def test_the_config_block_needs_a_key_set() -> None:
    rules = ConsentRules.load(CONFIG / "consent.yaml")
    ctx = PlatformContext(PlatformServices(), rules, b"k", Path("/nonexistent"), time.time)

    def build(block: dict[str, Any]) -> ChuangfuTianfu:
        return build_adapter(KEY, block, ctx, ChuangfuTianfu)

    with pytest.raises(ValueError, match="jwks_file or jwks_url"):
        build({"enabled": True, "jwks_file": None, "jwks_url": None})
    with pytest.raises(ValueError, match="http"):
        build({"enabled": True, "jwks_url": "file:///etc/jwks.json"})
    with pytest.raises(ValueError, match="chuangfu-tianfu: unknown setting 'secret_file'"):
        build({"enabled": True, "jwks_file": "x.json", "secret_file": "y"})
    with pytest.raises(ValueError, match="chuangfu-tianfu: unknown setting 'jwks_fiel'"):
        build({"enabled": True, "jwks_fiel": "x.json", "jwks_url": "https://p.example/j"})
    assert build({"enabled": True, "jwks_file": "x.json"}).key == KEY


def test_the_simulator_writes_what_the_adapter_reads(tmp_path: Path) -> None:
    write_demo_credentials(tmp_path)
    jwks = json.loads((tmp_path / "jwks.json").read_text())
    private = json.loads((tmp_path / "private.jwk").read_text())
    assert [k["kid"] for k in jwks["keys"]] == [KID] == [private["kid"]]
    assert "d" not in jwks["keys"][0]
