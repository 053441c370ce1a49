"""The report as a printable Chinese page for credit officers (`Accept: text/html`).

Every value is escaped; the page loads nothing from anywhere (no scripts,
fonts or images), so it prints and archives as it is.
"""

from __future__ import annotations

from html import escape
from typing import Any

SECTION_TITLES = {
    "basic": "基本信息",
    "licenses": "行政许可",
    "penalties": "行政处罚",
    "lists": "红黑名单",
    "commitments": "信用承诺",
    "tax": "纳税信用",
    "social_insurance": "社会保险",
    "housing_fund": "住房公积金",
    "utilities": "水电气缴费",
    "judicial": "司法信息",
    "loans": "融资信息",
}
COMPLETENESS = {"complete": "完整", "partial": "部分", "unavailable": "暂无数据"}
ENTERPRISE_LABELS = {
    "credit_code": "统一社会信用代码",
    "name": "企业名称",
    "entity_type": "企业类型",
    "division_code": "行政区划",
    "legal_rep_masked": "法定代表人",
    "registered_on": "成立日期",
    "status": "登记状态",
    "registered_capital_fen": "注册资本（分）",
    "industry_code": "行业代码",
}
# The fields a credit officer reads first; everything else follows in a details row.
_LEAD_FIELDS = (
    "decision_number", "document_number", "list_name", "commitment_type", "rating",
    "period", "case_number", "violation_type", "status",
)  # fmt: skip
_STYLE = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei",sans-serif;
margin:2em;color:#111}h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #999;
margin-top:1.6em}table{border-collapse:collapse;width:100%;font-size:.9em}
td,th{border:1px solid #bbb;padding:.25em .4em;text-align:left;vertical-align:top}
.score{font-size:1.3em}.muted{color:#555;font-size:.85em}
@media print{body{margin:1cm}h2{page-break-after:avoid}tr{page-break-inside:avoid}}
"""


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return "、".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{escape(str(k))}：{_text(v)}" for k, v in value.items())
    return escape(str(value))


def _items(items: list[dict[str, Any]]) -> str:
    if not items:
        return "<p>无记录。</p>"
    rows = []
    for item in items:
        lead = "；".join(_text(item[f]) for f in _LEAD_FIELDS if item.get(f) is not None)
        skip = {*_LEAD_FIELDS, "record_id", "source_department", "data_as_of", "version"}
        rest = {k: v for k, v in item.items() if k not in skip}
        rows.append(
            f"<tr><td>{_text(item.get('record_id'))}</td><td>{lead or '—'}</td>"
            f"<td>{_text(rest)}</td><td>{_text(item.get('source_department'))}<br>"
            f"<span class=muted>{_text(item.get('data_as_of'))}</span></td></tr>"
        )
    return (
        "<table><tr><th>编号</th><th>要点</th><th>详情</th><th>来源与数据时间</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _score(score: dict[str, Any]) -> str:
    if score.get("value") is None:
        ns = score.get("not_scored") or {}
        return f"<p class=score>暂不评分（{_text(ns.get('code'))}：{_text(ns.get('reason'))}）</p>"
    reasons = "".join(
        f"<tr><td>{_text(r['indicator'])}</td><td>{_text(r.get('name'))}</td>"
        f"<td>{_text(r.get('department_name') or r.get('department'))}</td>"
        f"<td>{_text(r['points'])}</td><td>{_text(r['evidence'])}</td></tr>"
        for r in score.get("reasons", [])
    )
    return (
        f"<p class=score>信用分 {_text(score['value'])}（等级 {_text(score.get('grade'))}，"
        f"风险 {_text(score.get('risk_class'))}）</p>"
        f"<p class=muted>模型 {_text(score.get('model_version'))}，基础分 "
        f"{_text(score.get('base'))}</p>"
        "<table><tr><th>指标</th><th>名称</th><th>部门</th><th>分值</th><th>依据记录</th></tr>"
        f"{reasons}</table>"
    )


def render_html(report: dict[str, Any], *, signature: str) -> str:
    sections = report["sections"]
    parts = [
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>",
        f"<title>企业信用报告 {_text(report['credit_code'])}</title><style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>企业信用报告：{_text(report.get('enterprise_name'))}</h1>",
        f"<p>统一社会信用代码 {_text(report['credit_code'])}　报告编号 "
        f"{_text(report['report_id'])}<br>生成时间 {_text(report['generated_at'])}　"
        f"数据截至 {_text(report.get('data_as_of'))}<br>授权编号 "
        f"{_text(report['consent_id'])}（{_text(report.get('purpose'))}）</p>",
        "<h2>信用评分</h2>",
        _score(report["score"]),
    ]
    for name, section in sections.items():
        state = report["completeness"].get(name, {})
        status = COMPLETENESS.get(state.get("status", ""), _text(state.get("status")))
        reason = f"（{_text(state['reason'])}）" if state.get("reason") else ""
        parts.append(f"<h2>{escape(SECTION_TITLES.get(name, name))}</h2>")
        parts.append(f"<p class=muted>数据完整性：{status}{reason}</p>")
        if "enterprise" in section:
            rows = "".join(
                f"<tr><th>{escape(label)}</th><td>{_text(section['enterprise'].get(key))}</td></tr>"
                for key, label in ENTERPRISE_LABELS.items()
            )
            parts.append(f"<table>{rows}</table>")
        parts.append(_items(section.get("items", [])))
    if report.get("sections_not_consented"):
        withheld = "、".join(
            escape(SECTION_TITLES.get(n, n)) for n in report["sections_not_consented"]
        )
        parts.append(f"<p class=muted>未获授权的部分未列出：{withheld}</p>")
    parts.append(
        "<h2>签名</h2><p class=muted>本页据已签名的报告生成；"
        "请以 application/json 或 application/jose 获取可验证的原件。</p>"
        f"<p class=muted style='word-break:break-all'>{escape(signature)}</p></body></html>"
    )
    return "".join(parts)
