"""The report as a printable Chinese document (`text/html`, and the PDF made from it).

Its layout follows the PBOC enterprise credit report (企业信用报告): who asked
and why, a summary box (信息概要) of score, grade, risk class, the principal
negative reasons and the flags a credit officer looks for first, then the
basic information, the credit records (our platforms' loan ledger), non-credit
transactions (utilities), the public records, the score's detail, and at the
foot the report id, the signing key and how to verify the signed JSON. Every
section the configuration knows appears, in that fixed order, whether or not
the consent covers it: the reader sees what was not asked for.

Every value is escaped by `_t`, the one place text enters the page; the page
loads nothing from anywhere (no scripts, fonts or images: inline CSS and the
system's Noto CJK), so it prints and archives as it is.
"""

from __future__ import annotations

from html import escape
from typing import Any

import orjson

from gateway.keys import jose
from gateway.reports import labels as L

# (chapter, [(section, title, columns)]): the PBOC report's order. The first
# columns of each record; its other fields follow in the row beneath.
Section = tuple[str, str, tuple[str, ...]]
ORDER: tuple[tuple[str, tuple[Section, ...]], ...] = (
    ("基本信息", (("basic", "基本信息", ()),)),
    ("融资信息（信贷记录）", (("loans", "融资信息", (
        "platform", "loan_no", "bank_code", "status", "amount_fen", "outstanding_fen",
        "days_overdue", "last_event_at")),)),
    ("公用事业缴费（非信贷交易记录）", (("utilities", "公用事业缴费", (
        "utility_type", "period", "billed_fen", "paid_fen", "overdue_days")),)),
    ("公共记录", (
        ("tax", "纳税信用", ("rating_year", "rating", "score", "authority", "published_on")),
        ("judicial", "司法信息（被执行人）", (
            "case_number", "court", "filed_on", "amount_fen", "performance", "dishonest")),
        ("penalties", "行政处罚", (
            "decision_number", "authority", "decision_date", "violation_type", "penalty_types",
            "fine_fen", "severity", "published_until")),
        ("lists", "红黑名单", (
            "category", "list_name", "listing_authority", "listed_on", "valid_until")),
        ("social_insurance", "社会保险", (
            "period", "headcount", "paid_fen", "overdue_fen", "overdue_months")),
        ("housing_fund", "住房公积金", (
            "period", "headcount", "paid_fen", "overdue_fen", "overdue_months")),
        ("licenses", "行政许可", (
            "document_number", "certificate_name", "authority", "decision_date", "valid_until",
            "status")),
        ("commitments", "信用承诺", ("commitment_type", "made_on", "authority", "status")),
    )),
)  # fmt: skip
SECTION_TITLES = {name: title for _, sections in ORDER for name, title, _ in sections}
_LABELS = {
    "loans": {"amount_fen": "贷款金额", "status": "贷款状态"},
    "judicial": {"amount_fen": "执行标的"},
    "licenses": {"authority": "许可机关"},
    "penalties": {"authority": "处罚机关"},
    "commitments": {"authority": "受理单位", "status": "履约状态"},
    "tax": {"authority": "评价机关"},
}
# Shown in the record's source line, or our own bookkeeping: not among its details.
_META = frozenset({
    "record_id", "category", "source_department", "data_as_of", "version", "source_record_id",
    "dispute", "publication_rule_set", "credit_code", "subject_name",
})  # fmt: skip
# A section lists at most this many records in print (the signed JSON has them all):
# rendering a PDF is bounded by it.
PRINTED_MAX = 200
KEEP_WHOLE = 6
_NUMERALS = "一二三四五六七八九十"
_STYLE = """
@page{size:A4;margin:16mm 14mm 18mm;font-family:"Noto Sans CJK SC",sans-serif;font-size:8pt;
color:#666;@top-left{content:"企业信用报告"}@top-right{content:string(rid)}
@bottom-center{content:"第 " counter(page) " 页 / 共 " counter(pages) " 页"}}
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei",sans-serif;
font-size:9.5pt;line-height:1.45;color:#111;margin:0 auto;max-width:60em}
h1{font-size:19pt;text-align:center;letter-spacing:.3em;margin:.2em 0}
.sub{text-align:center;font-size:12pt;margin:0 0 .6em}
.rid{string-set:rid content()}
h2{font-size:12pt;background:#1f3a5f;color:#fff;padding:.2em .5em;margin:1.2em 0 .4em;
break-after:avoid}
h3{font-size:10.5pt;border-left:4px solid #1f3a5f;padding-left:.4em;margin:1em 0 .3em;
break-after:avoid}
table{border-collapse:collapse;width:100%;margin:.2em 0}
td,th{border:1px solid #9aa5b1;padding:.2em .35em;text-align:left;vertical-align:top;
overflow-wrap:break-word}
th{background:#e8edf3;font-weight:bold}
tr,.rec,.keep{break-inside:avoid}.state{break-after:avoid}
.meta th{width:17%}.meta td{width:33%}
.num{text-align:right;white-space:nowrap}
.more td{background:#fafbfc;color:#333;font-size:8.5pt}
.summary{border:2px solid #1f3a5f;padding:.5em .7em;margin:.6em 0}
.summary table{margin:.3em 0}.label{font-weight:bold;margin:.4em 0 0}
.score{font-size:22pt;font-weight:bold;color:#1f3a5f}
.big td{border:none;padding:0 1.2em 0 0;vertical-align:baseline}
.flags td,.flags th{text-align:center;width:20%}
.yes{background:#fde2e1;color:#a40000;font-weight:bold}
.unknown{color:#666}
.muted{color:#555;font-size:8.5pt}
.mark{color:#a40000;font-weight:bold}
.sig{font-size:7pt;overflow-wrap:anywhere;color:#333}
ol{margin:.2em 0;padding-left:1.6em}code{font-family:inherit;background:#eef1f4;padding:0 .2em}
@media screen{body{margin:2em auto;padding:0 1em}}
"""


def _t(text: Any) -> str:
    """The one place text enters the page."""
    return escape(str(text))


def _v(name: str, raw: Any) -> str:
    return _t(L.value(name, raw))


def _chapter(number: int, title: str) -> str:
    return f"<h2>{_NUMERALS[number - 1]}、{_t(title)}</h2>"


def _head(report: dict[str, Any]) -> str:
    recipient = report.get("recipient") or {}
    rows = [
        ("报告编号", f"<span class=rid>{_t(report['report_id'])}</span>"),
        ("报告时间", _t(L.beijing(report["generated_at"]))),
        ("统一社会信用代码", _t(report["credit_code"])),
        ("数据截至", _v("data_as_of", report.get("data_as_of"))),
        ("查询机构", _t(_recipient(recipient)) if recipient else "—"),
        ("查询原因", _t(L.PURPOSES.get(report.get("purpose") or "", report.get("purpose")))),
        ("授权编号", _t(report.get("consent_id"))),
        ("报告有效期至", _v("valid_until", L.beijing(report["valid_until"])))
        if report.get("valid_until")
        else ("报告日期", _t(report.get("as_of_date"))),
    ]
    cells = "".join(
        f"<tr><th>{_t(a)}</th><td>{x}</td><th>{_t(b)}</th><td>{y}</td></tr>"
        for (a, x), (b, y) in zip(rows[::2], rows[1::2], strict=True)
    )
    return (
        "<h1>企业信用报告</h1>"
        f"<p class=sub>{_t(report.get('enterprise_name') or report['credit_code'])}</p>"
        f"<table class=meta>{cells}</table>"
        "<p class=muted>时间均为北京时间（UTC+8）；金额为人民币，单位元，"
        "注明“万元”者按来源部门的计量单位列示。</p>"
    )


def _recipient(recipient: dict[str, Any]) -> str:
    org, client = recipient.get("org_code"), recipient.get("client_id")
    return f"{org}（客户端 {client}）" if org else str(client)


def _items_in(report: dict[str, Any], name: str) -> list[dict[str, Any]] | None:
    """A section's records, or None when the consent does not cover it."""
    section = report["sections"].get(name)
    return None if section is None else list(section.get("items", []))


def _flag(report: dict[str, Any], name: str, found: list[str]) -> tuple[str, str]:
    """(text, class) of one summary flag: what the section shows, or why it cannot say."""
    if name not in report["sections"]:
        return "未获授权查询", "unknown"
    if found:
        return "是：" + "、".join(found), "yes"
    status = report["completeness"].get(name, {}).get("status")
    if status == "unavailable":
        return "暂无数据", "unknown"
    return ("否（数据不完整）", "unknown") if status == "partial" else ("否", "")


def _flags(report: dict[str, Any]) -> str:
    black = [i for i in _items_in(report, "lists") or [] if i.get("category") == "black_list"]
    black_names = [str(i.get("list_name")) for i in black]
    dishonest = [
        str(i.get("case_number")) for i in _items_in(report, "judicial") or [] if i.get("dishonest")
    ]
    status = (report["sections"].get("basic", {}).get("enterprise") or {}).get("status")
    closed = [L.ENTERPRISE_STATUS[status]] if status in ("deregistered", "revoked") else []
    disputed = [
        f"{SECTION_TITLES.get(name, name)} {len(group)} 条"
        for name, section in report["sections"].items()
        if (group := [i for i in section.get("items", []) if _open_dispute(i)])
    ]
    flags = [
        ("严重失信主体名单", _flag(report, "lists", black_names)),
        ("失信被执行人", _flag(report, "judicial", dishonest)),
        ("重大税收违法", _flag(report, "lists", [n for n in black_names if "重大税收违法" in n])),
        ("注销/吊销", _flag(report, "basic", closed)),
        ("存在未决异议", ("是：" + "、".join(disputed), "yes") if disputed else ("否", "")),
    ]
    head = "".join(f"<th>{_t(label)}</th>" for label, _ in flags)
    body = "".join(f"<td class='{css}'>{_t(text)}</td>" for _, (text, css) in flags)
    return f"<table class=flags><tr>{head}</tr><tr>{body}</tr></table>"


def _open_dispute(item: dict[str, Any]) -> bool:
    dispute = item.get("dispute")
    return isinstance(dispute, dict) and dispute.get("status") == "open"


def _summary(report: dict[str, Any]) -> str:
    score = report["score"]
    if score.get("value") is None:
        ns = score.get("not_scored") or {}
        figure = f"<td><span class=score>暂不评分</span></td><td>{_t(ns.get('reason') or '—')}</td>"
    else:
        figure = (
            f"<td>信用评分 <span class=score>{_t(score['value'])}</span></td>"
            f"<td>信用等级 <span class=score>{_t(score.get('grade'))}</span></td>"
            f"<td>风险等级 <span class=score>{_t(score.get('risk_class'))}</span></td>"
        )
    negatives = score.get("principal_negative_reasons") or []
    reasons = (
        "<ol>"
        + "".join(
            f"<li>{_t(r.get('name') or r['indicator'])}（{_t(_department(r))}）"
            f"<span class=mark> {_t(r['points'])} 分</span>"
            f"<span class=muted> 依据 {_t(_evidence(r))}</span></li>"
            for r in negatives
        )
        + "</ol>"
        if negatives
        else "<p>无</p>"
    )
    gaps = [
        f"{title}：{L.COMPLETENESS.get(state['status'], state['status'])}"
        for name, title in SECTION_TITLES.items()
        if (state := report["completeness"].get(name)) and state.get("status") != "complete"
    ]
    return (
        "<div class=summary>"
        f"<table class=big><tr>{figure}</tr></table>"
        f"<p class=muted>评分模型 {_t(score.get('model_version'))}，基础分 {_t(score.get('base'))}"
        "，明细见“信用评分明细”。</p>"
        f"<p class=label>主要负面因素</p>{reasons}"
        f"<p class=label>重点关注</p>{_flags(report)}"
        + (f"<p class=muted>数据不完整的部分：{_t('；'.join(gaps))}</p>" if gaps else "")
        + "</div>"
    )


def _department(reason: dict[str, Any]) -> Any:
    return reason.get("department_name") or reason.get("department")


def _state(report: dict[str, Any], name: str) -> str:
    state = report["completeness"].get(name, {})
    status = L.COMPLETENESS.get(state.get("status", ""), state.get("status"))
    reason = f"（{L.completeness_reason(state['reason'])}）" if state.get("reason") else ""
    return f"<p class='muted state'>数据完整性：{_t(status)}{_t(reason)}</p>"


def _basic(report: dict[str, Any]) -> str:
    section = report["sections"]["basic"]
    enterprise = dict(section.get("enterprise") or {})
    for item in section.get("items", [])[:1]:  # the registration: what the register adds
        for key in ("address", "registration_authority"):
            enterprise.setdefault(key, item.get(key))
    if enterprise.get("status") in L.ENTERPRISE_STATUS:
        enterprise["status"] = L.ENTERPRISE_STATUS[enterprise["status"]]
    rows = [(L.field(k), _v(k, v)) for k, v in enterprise.items() if k != "status"]
    rows.insert(2, ("登记状态", _t(enterprise.get("status") or "—")))
    if len(rows) % 2:
        rows.append(("", ""))
    cells = "".join(
        f"<tr><th>{_t(a)}</th><td>{x}</td><th>{_t(b)}</th><td>{y}</td></tr>"
        for (a, x), (b, y) in zip(rows[::2], rows[1::2], strict=True)
    )
    return f"<table class=meta>{cells}</table>"


def _records(name: str, columns: tuple[str, ...], items: list[dict[str, Any]]) -> str:
    if not items:
        return "<p>无记录。</p>"
    own = _LABELS.get(name, {})
    numbered = name != "loans"  # ledger rows are not government records: no record number
    head = ("<th>记录号</th>" if numbered else "") + "".join(
        f"<th>{_t(own.get(c) or L.field(c))}</th>" for c in columns
    )
    span, rows = len(columns) + numbered, []
    for item in items[:PRINTED_MAX]:
        # A record and the line beneath it stay on one page.
        cells = "".join(f"<td{_align(c)}>{_v(c, item.get(c))}</td>" for c in columns)
        number = f"<td>{_t(item.get('record_id', '—'))}</td>" if numbered else ""
        more = _more(item, columns)
        more = f"<tr class=more><td colspan={span}>{more}</td></tr>" if more else ""
        rows.append(f"<tbody class=rec><tr>{number}{cells}</tr>{more}</tbody>")
    if len(items) > PRINTED_MAX:
        rows.append(
            f"<tbody><tr class=more><td colspan={span}>另有 {_t(len(items) - PRINTED_MAX)} "
            "条记录未在打印件中列出，见签名的 JSON 报告。</td></tr></tbody>"
        )
    # A short table moves whole to the next page rather than leave its head and
    # first record behind (WeasyPrint splits a table's first row group otherwise).
    keep = " class=keep" if len(items) <= KEEP_WHOLE else ""
    return f"<table{keep}><thead><tr>{head}</tr></thead>{''.join(rows)}</table>"


def _align(column: str) -> str:
    numeric = column.endswith(("_fen", "_days", "_months")) or column in ("headcount", "score")
    return " class=num" if numeric else ""


def _more(item: dict[str, Any], columns: tuple[str, ...]) -> str:
    """A record's other fields, its source and any dispute, on the line beneath it."""
    parts = [
        f"{_t(L.field(k))}：{_v(k, v)}"
        for k, v in item.items()
        if k not in columns and k not in _META and v not in (None, "", [])
    ]
    dispute = item.get("dispute")
    if isinstance(dispute, dict):
        status = L.DISPUTE_STATUS.get(dispute.get("status", ""), dispute.get("status"))
        when = L.beijing(dispute.get("resolved_at") or dispute.get("opened_at") or "—")
        parts.insert(0, f"<span class=mark>【{_t(status)}】</span>{_t(when)}")
    if item.get("source_department"):
        source = f"来源：{item['source_department']}"
        if item.get("source_record_id"):
            source += f"（记录标识 {item['source_record_id']}）"
        parts.append(f"{_t(source)}，数据时间 {_v('data_as_of', item.get('data_as_of'))}")
    return "；".join(parts)


def _score_detail(report: dict[str, Any]) -> str:
    score = report["score"]
    rows = "".join(
        f"<tr><td>{_t(r['indicator'])}</td><td>{_t(r.get('name') or '—')}</td>"
        f"<td>{_t(_department(r))}</td><td class=num>{_t(r['points'])}</td>"
        f"<td>{_t(_evidence(r))}</td></tr>"
        for r in score.get("reasons", [])
    )
    trend = "".join(
        f"<tr><td>{_t(t['quarter'])}</td><td>{_t(t['as_of'])}</td>"
        f"<td class=num>{_t(t['value'] if t['value'] is not None else '暂不评分')}</td>"
        f"<td>{_t(t.get('grade') or '—')}</td></tr>"
        for t in report.get("score_trend", [])
    )
    return (
        "<table><thead><tr><th>指标</th><th>说明</th><th>决定部门或报送平台</th><th>分值</th>"
        f"<th>依据</th></tr></thead>{rows or '<tr><td colspan=5>无加减分项</td></tr>'}"
        "</table><h3>近四个季度评分</h3><table class=keep><thead><tr><th>季度</th><th>截至</th>"
        f"<th>评分</th><th>等级</th></tr></thead>{trend}</table>"
    )


def _evidence(reason: dict[str, Any]) -> str:
    text = L.evidence(reason.get("evidence", [])) or "—"
    if reason.get("evidence_withheld"):
        text += f"（另有 {reason['evidence_withheld']} 条在未获授权的部分）"
    return text


def _foot(report: dict[str, Any], signature: str) -> str:
    try:  # the key the signature itself names
        kid = str(orjson.loads(jose.b64decode(signature.split(".", 1)[0])).get("kid", "—"))
    except (ValueError, AttributeError):
        kid = "—"
    recipient = report.get("recipient") or {}
    use = (
        f"<p>本报告仅供{_t(_recipient(recipient))}用于"
        f"{_t(L.PURPOSES.get(report.get('purpose') or '', report.get('purpose')))}，"
        "未经信息主体授权不得向第三方提供。</p>"
        if recipient
        else ""
    )
    return (
        f"{use}<table class=meta><tr><th>报告编号</th><td>{_t(report['report_id'])}</td>"
        f"<th>签名密钥编号</th><td>{_t(kid)}</td></tr></table>"
        "<p>本打印件据已签名的报告生成，内容以签名的 JSON 报告为准。核验方法：</p><ol>"
        "<li>以 <code>Accept: application/json</code> 取得同一报告编号的报告（或以 "
        "<code>application/jose</code> 取得其紧凑 JWS）；</li>"
        "<li>取出其中的 <code>signature</code>（分离式 JWS），"
        "其余内容按 RFC 8785 规范化为 JSON；</li>"
        "<li>从 <code>/.well-known/jwks.json</code> 取签名密钥编号（kid）为上列编号的公钥，"
        "验证该签名；验证通过且报告编号、内容与本打印件一致，即为本中心出具的原件。</li></ol>"
        f"<p class=muted>签名：</p><p class=sig>{_t(signature)}</p>"
    )


def _chapters(report: dict[str, Any], first: int) -> tuple[list[str], int]:
    """Every configured section in the fixed order, numbered from `first`: its
    records, or a line saying the consent does not cover it."""
    withheld = set(report.get("sections_not_consented", []))
    shown = report["sections"]
    known = set(SECTION_TITLES)
    extra = tuple((n, n, ()) for n in [*shown, *sorted(withheld)] if n not in known)
    chapters = (*ORDER[:-1], (ORDER[-1][0], (*ORDER[-1][1], *extra)))
    parts, number = [], first
    for title, sections in chapters:
        present = [s for s in sections if s[0] in shown or s[0] in withheld]
        if not present:
            continue
        parts.append(_chapter(number, title))
        number += 1
        for name, heading, columns in present:
            if len(sections) > 1:
                parts.append(f"<h3>{_t(heading)}</h3>")
            if name not in shown:
                parts.append("<p class=unknown>本次授权未涵盖此部分，未列出。</p>")
                continue
            parts.append(_state(report, name))
            if name == "basic":
                parts.append(_basic(report))
            else:
                parts.append(_records(name, columns, _items_in(report, name) or []))
    return parts, number


def render_html(report: dict[str, Any], *, signature: str) -> str:
    chapters, number = _chapters(report, 2)
    return "".join(
        [
            "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>",
            f"<title>企业信用报告 {_t(report['credit_code'])} {_t(report['report_id'])}</title>",
            f"<style>{_STYLE}</style></head><body>",
            _head(report),
            _chapter(1, "信息概要"),
            _summary(report),
            *chapters,
            _chapter(number, "信用评分明细"),
            _score_detail(report),
            _chapter(number + 1, "声明与核验"),
            _foot(report, signature),
            "</body></html>",
        ]
    )
