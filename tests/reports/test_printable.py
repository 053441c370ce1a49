"""The printable report: what a credit officer reads on the page and on paper."""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gateway.loans.service import LedgerEvent
from gateway.reports.build import ReportBuilder, consent_cut, request_members
from gateway.reports.html import ORDER, PRINTED_MAX, render_html
from gateway.reports.pdf import Printer, PrinterBusy, render_pdf
from tests.dashboard.test_browser import ARTIFACTS
from tests.reports.test_build import CONFIG, ENTERPRISE, FEEDS, NOW, RECORDS, penalty, rec

COURT, TAX = "成都市中级人民法院", "国家税务总局成都市税务局"
KID = "rpt-2026-11"
HEADER = b'{"alg":"ES256","kid":"%s","typ":"xyd-credit-report+jws"}' % KID.encode()
SIGNATURE = base64.urlsafe_b64encode(HEADER).rstrip(b"=").decode() + "..MEUCIQDxsignature"
LOAN = {
    "platform": "kechuangtong", "loan_no": "KCT-2026-0001",
    "credit_code": ENTERPRISE["credit_code"], "bank_code": "BOCD", "status": "overdue",
    "amount_fen": 500_000_000,
    "outstanding_fen": 320_000_000, "days_overdue": 35, "core_enterprise_code": None,
    "first_event_at": "2026-05-01T01:00:00+00:00", "last_event_at": "2026-11-25T08:30:00+00:00",
    "borrower": "enterprise",
}  # fmt: skip
TROUBLE = [
    rec(11, "judgment_debtor", COURT, "2026-08-01", case_number="(2026)川01执123号", court=COURT,
        filed_on="2026-08-01", performance="unperformed", dishonest=True, amount_fen=123_456_789),
    rec(12, "black_list", TAX, "2026-09-01", list_name="重大税收违法失信主体",
        listing_authority=TAX, listed_on="2026-09-01", reason="虚开增值税专用发票"),
    rec(13, "utility", "国网四川省电力公司成都供电公司", "2026-10-01", utility_type="electricity",
        period="2026-10", billed_fen=1_234_567, paid_fen=1_000_000, overdue_days=12),
    penalty(16, "2026-09-15", fine_fen=123_456_700, violation_type="超标排放", severity="serious",
            facts="废气排放口颗粒物浓度超过排放标准"),
]  # fmt: skip
# LOAN's life in the ledger: paid out on 2026-05-01, 35 days late on 2026-11-25.
LOAN_EVENTS = [
    LedgerEvent("kechuangtong", "KCT-2026-0001", "loan_disbursed",
                datetime(2026, 5, 1, 1, tzinfo=UTC), 500_000_000, None),
    LedgerEvent("kechuangtong", "KCT-2026-0001", "repayment_overdue",
                datetime(2026, 11, 25, 8, 30, tzinfo=UTC), None, 35),
]  # fmt: skip
OPEN_DISPUTE = {
    16: {"status": "open", "opened_at": "2026-11-20T02:00:00+00:00", "resolved_at": None}
}


def as_sent(full: dict[str, Any], sections: frozenset[str] | None = None) -> dict[str, Any]:
    cut = consent_cut(full, sections if sections is not None else frozenset(full["sections"]))
    own = request_members(
        consent_id="cns_print", purpose="loan_application", report_id="rpt_Print0001",
        generated_at=NOW, client_id="bank-a", org_code="BOCD", stale_at=None,
    )  # fmt: skip
    return {**cut, **own}


@pytest.fixture(scope="module")
def troubled() -> dict[str, Any]:
    full = ReportBuilder.load(CONFIG).build(
        ENTERPRISE, [*RECORDS, *TROUBLE], FEEDS, NOW, OPEN_DISPUTE, [LOAN], LOAN_EVENTS
    )
    return as_sent(full)


@pytest.fixture(scope="module")
def page(troubled: dict[str, Any]) -> str:
    return render_html(troubled, signature=SIGNATURE)


def visible(html: str) -> str:
    """The page's text as read: no style sheet, no tags, entities decoded."""
    body = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", body)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def summary_box(html: str) -> str:
    start = html.index("<div class=summary>")
    return html[start : html.index("</div>", start)]


def test_the_summary_box_opens_the_report(page: str, troubled: dict[str, Any]) -> None:
    box = summary_box(page)
    assert page.index("<div class=summary>") < page.index("基本信息")
    score = troubled["score"]
    assert f"<span class=score>{score['value']}</span>" in box
    assert f"<span class=score>{score['grade']}</span>" in box
    assert f"<span class=score>{score['risk_class']}</span>" in box
    for reason in score["principal_negative_reasons"]:
        assert reason["name"] in box
        assert f"{reason['points']} 分" in box
    flags = re.findall(r"<th>([^<]+)</th>", box.split("class=flags")[1])
    assert flags == [
        "严重失信主体名单",
        "失信被执行人",
        "重大税收违法",
        "注销/吊销",
        "存在未决异议",
    ]
    cells = re.findall(r"<td class='([^']*)'>([^<]*)</td>", box)
    assert cells == [
        ("yes", "是：重大税收违法失信主体"),
        ("yes", "是：(2026)川01执123号"),
        ("yes", "是：重大税收违法失信主体"),
        ("", "否"),
        ("yes", "是：行政处罚 1 条"),
    ]


def test_flags_say_no_and_say_when_they_cannot_know() -> None:
    builder = ReportBuilder.load(CONFIG)
    clean = builder.build(ENTERPRISE, RECORDS, FEEDS, NOW, None, [])
    cut = as_sent(clean, frozenset({"basic", "penalties", "judicial"}))
    cells = re.findall(
        r"<td class='([^']*)'>([^<]*)</td>", summary_box(render_html(cut, signature=SIGNATURE))
    )
    assert cells == [
        ("unknown", "未获授权查询"),  # lists not consented: no one may read "no" into it
        ("unknown", "暂无数据"),  # judicial: no feed ever delivered
        ("unknown", "未获授权查询"),
        ("", "否"),
        ("", "否"),
    ]
    closed = builder.build({**ENTERPRISE, "status": "revoked"}, RECORDS, FEEDS, NOW)
    box = summary_box(render_html(as_sent(closed), signature=SIGNATURE))
    assert "<td class='yes'>是：吊销</td>" in box
    assert "暂不评分" in box and "企业已注销或被吊销营业执照" in box


def test_labels_are_chinese_and_no_field_name_shows(page: str) -> None:
    text = visible(page)
    for label in ("处罚决定书文号", "罚款金额", "贷款金额", "逾期天数", "执行标的", "名单名称",
                  "注册资本", "法定代表人", "融资平台", "科创通", "逾期", "电费", "全部未履行",
                  "有限责任公司", "存续", "黑名单", "贷款申请"):  # fmt: skip
        assert label in text, label
    for raw in ("amount_fen", "fine_fen", "days_overdue", "loan_no", "legal_rep_masked",
                "registered_capital_fen", "black_list", "red_list", "kechuangtong", "overdue",
                "limited_company", "loan_application", "source_department", "complete",
                "no complete feed"):  # fmt: skip
        assert raw not in text, raw


def test_money_in_yuan_and_wan_where_the_source_used_wan(page: str) -> None:
    text = visible(page)
    assert "100 万元" in text  # registered capital 100,000,000 fen
    assert "2 万元" in text and "123.4567 万元" in text  # fines, as decided in 万元
    assert "5,000,000.00 元" in text and "3,200,000.00 元" in text  # the loan
    assert "1,234,567.89 元" in text  # judicial: the amount to enforce
    assert "12,345.67 元" in text and "10,000.00 元" in text  # the electricity bill
    assert "500000000" not in text and "2000000" not in text


def test_every_time_in_beijing_time(page: str) -> None:
    text = visible(page)
    assert "2026-11-27 12:00:00" in text  # generated 04:00 UTC
    assert "2026-11-25 16:30:00" in text  # the loan's last event, 08:30 UTC
    assert "2026-11-20 10:00:00" in text  # the dispute opened 02:00 UTC
    assert "2026-12-27 12:00:00" in text  # valid_until
    assert "北京时间" in text
    assert not re.search(r"\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)", text)
    assert not re.search(r"\dT\d", text)


def titles(html: str) -> list[str]:
    return [
        re.sub(r"^[一二三四五六七八九十]+、", "", t)
        for t in re.findall(r"<h[23]>([^<]+)</h[23]>", html)
    ]


def test_a_loan_reason_names_its_platform_and_the_loan_unless_loans_are_not_consented(
    troubled: dict[str, Any], page: str
) -> None:
    [reason] = [r for r in troubled["score"]["reasons"] if r["indicator"] == "LOAN-OVERDUE-31D"]
    assert reason["evidence"] == ["kechuangtong:KCT-2026-0001"]
    row = re.search(r"<tr><td>LOAN-OVERDUE-31D</td>.*?</tr>", page)
    assert row is not None
    assert re.findall(r"<td[^>]*>([^<]*)</td>", row.group(0)) == [
        "LOAN-OVERDUE-31D", "贷款当前逾期31至60天", "科创通", "-40", "科创通贷款 KCT-2026-0001",
    ]  # fmt: skip
    assert "<th>决定部门或报送平台</th>" in page
    full = ReportBuilder.load(CONFIG).build(
        ENTERPRISE, [*RECORDS, *TROUBLE], FEEDS, NOW, OPEN_DISPUTE, [LOAN], LOAN_EVENTS
    )
    unconsented = render_html(as_sent(full, frozenset({"basic", "penalties"})), signature=SIGNATURE)
    row = re.search(r"<tr><td>LOAN-OVERDUE-31D</td>.*?</tr>", unconsented)
    assert row is not None
    assert "另有 1 条在未获授权的部分" in row.group(0)
    assert "KCT-2026-0001" not in unconsented


def test_sections_in_a_fixed_order_whatever_the_report_order(troubled: dict[str, Any]) -> None:
    shuffled = {**troubled, "sections": dict(reversed(list(troubled["sections"].items())))}
    expected = ["信息概要"]
    for chapter, sections in ORDER:
        expected.append(chapter)
        expected += [title for _, title, _ in sections] if len(sections) > 1 else []
    found = titles(render_html(shuffled, signature=SIGNATURE))
    assert found == [*expected, "信用评分明细", "近四个季度评分", "声明与核验"]
    assert found == titles(render_html(troubled, signature=SIGNATURE))
    assert expected[1:4] == ["基本信息", "融资信息（信贷记录）", "公用事业缴费（非信贷交易记录）"]


def test_a_section_not_consented_keeps_its_place_and_says_so(troubled: dict[str, Any]) -> None:
    full = ReportBuilder.load(CONFIG).build(ENTERPRISE, [*RECORDS, *TROUBLE], FEEDS, NOW)
    html = render_html(as_sent(full, frozenset({"basic", "tax"})), signature=SIGNATURE)
    text = visible(html)
    assert titles(html) == titles(render_html(troubled, signature=SIGNATURE))
    assert text.count("本次授权未涵盖此部分，未列出。") == len(troubled["sections"]) - 2
    assert "(2026)川01执123号" not in text and "重大税收违法失信主体名单" not in text


def test_completeness_reasons_in_chinese(page: str) -> None:
    text = visible(page)
    assert "纳税信用评价数据已超过 400 天未更新（最近一次 2025-07-15）" in text
    assert "未收到完整数据：被执行人" in text


def test_the_foot_names_the_report_the_key_and_how_to_verify(page: str) -> None:
    foot = visible(page[page.index("声明与核验") :])
    assert "rpt_Print0001" in foot
    assert KID in foot and "签名密钥编号" in foot
    assert "Accept: application/json" in foot and "/.well-known/jwks.json" in foot
    assert "RFC 8785" in foot and SIGNATURE in foot
    assert "BOCD（客户端 bank-a）" in foot and "贷款申请" in foot
    head = visible(page[: page.index("信息概要")])
    assert "cns_print" in head and "BOCD（客户端 bank-a）" in head and "报告有效期至" in head


def test_everything_is_escaped() -> None:
    hostile = "<script>alert(1)</script>"
    full = ReportBuilder.load(CONFIG).build(
        {**ENTERPRISE, "name": hostile},
        [*RECORDS, penalty(20, "2026-10-01", violation_type=hostile, **{"<i>": hostile})],
        FEEDS, NOW,
    )  # fmt: skip
    report = as_sent(full)
    report["recipient"] = {"client_id": hostile, "org_code": None}
    html = render_html(report, signature=hostile)
    assert "<script" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_section_prints_a_bounded_number_of_records(troubled: dict[str, Any]) -> None:
    many = [dict(LOAN, loan_no=f"KCT-{n}") for n in range(PRINTED_MAX + 5)]
    report = {**troubled, "sections": {**troubled["sections"], "loans": {"items": many}}}
    html = render_html(report, signature=SIGNATURE)
    assert f"KCT-{PRINTED_MAX - 1}<" in html and f"KCT-{PRINTED_MAX}<" not in html
    assert "另有 5 条记录未在打印件中列出" in visible(html)


# --- the PDF ---------------------------------------------------------------


def pdf_pages(pdf: bytes, tmp_path: Path) -> list[Path]:
    source = tmp_path / "report.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "60", "-png", str(source), str(tmp_path / "page")], check=True
    )
    return sorted(tmp_path.glob("page-*.png"))


def ink(png: Path) -> float:
    """The fraction of the page that is not (nearly) white."""
    image = Image.open(png).convert("L")
    histogram = image.histogram()
    return 1 - sum(histogram[240:]) / (image.width * image.height)


@pytest.fixture(scope="module")
def printed(page: str) -> bytes:
    return render_pdf(page)


def test_the_pdf_renders_the_page_with_cjk_fonts(printed: bytes, tmp_path: Path) -> None:
    assert printed.startswith(b"%PDF-")
    pages = pdf_pages(printed, tmp_path)
    assert len(pages) >= 2
    assert 0.03 < ink(pages[0]) < 0.6  # text and rules on white, not blank, not a black box
    source = tmp_path / "report.pdf"
    # For a person to look at: the first page at a readable resolution.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-r", "110", "-png", "-f", "1", "-l", "1", "-singlefile", str(source),
         str(ARTIFACTS / "report-page1")],
        check=True,
    )  # fmt: skip
    fonts = subprocess.run(["pdffonts", str(source)], capture_output=True, text=True, check=True)
    # Every glyph is Noto CJK's: no fallback font, so no box for a missing glyph.
    embedded = [line.split()[0] for line in fonts.stdout.splitlines()[2:]]
    assert embedded and all("Noto-Sans-CJK-SC" in name for name in embedded), embedded
    text = subprocess.run(
        ["pdftotext", "-layout", str(source), "-"], capture_output=True, text=True, check=True
    ).stdout
    for words in (
        "企业信用报告",
        "信息概要",
        "严重失信主体名单",
        "5,000,000.00 元",
        "rpt_Print0001",
    ):
        assert words in text, words
    # A record and the line beneath it are never split over two pages.
    by_page = text.split("\f")
    # The loan's row (the score's detail, further on, cites it too).
    loan = next(n for n, page in enumerate(by_page) if "KCT-2026-0001" in page)
    assert "首次记录" in by_page[loan]


def test_the_pdf_loads_nothing_from_anywhere() -> None:
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            """No access log on the test's output."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        html = (
            f"<html><head><link rel=stylesheet href='{url}/a.css'></head><body>"
            f"<img src='{url}/b.png'><p style=\"background:url('{url}/c')\">x</p></body></html>"
        )
        assert render_pdf(html).startswith(b"%PDF-")
    finally:
        server.shutdown()
    assert asked == []


def test_the_printer_renders_off_the_event_loop(page: str) -> None:
    async def run() -> tuple[bytes, int]:
        printer = Printer(workers=1, waiting=0)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticker = asyncio.create_task(tick())
        try:
            with printer.slot():
                pdf = await printer.pdf(page)
        finally:
            ticker.cancel()
            printer.close()
        return pdf, ticks

    started = time.perf_counter()
    pdf, ticks = asyncio.run(run())
    assert pdf.startswith(b"%PDF-")
    assert ticks >= 3, f"the loop ticked {ticks} times in {time.perf_counter() - started:.2f} s"


def test_the_printer_refuses_beyond_its_queue() -> None:
    printer = Printer(workers=1, waiting=1)
    try:
        with printer.slot(), printer.slot():
            with pytest.raises(PrinterBusy) as refused, printer.slot():
                raise AssertionError("a third place was given")
            assert refused.value.status == 503
            assert refused.value.headers["Retry-After"] == "2"
        with printer.slot():  # places are given back
            assert printer.pending == 1
    finally:
        printer.close()


@pytest.fixture(autouse=True, scope="module")
def _poppler() -> None:
    if shutil.which("pdftoppm") is None:  # `make services` installs it
        pytest.fail("poppler-utils (pdftoppm) is not installed: run make services")
