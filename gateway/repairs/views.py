"""The credit repair review pages' HTML: the department reviewer's queue and one
application, escaped as the dashboard's views.py does (its `esc`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gateway.dashboard import facts
from gateway.dashboard.views import esc, href
from gateway.repairs.commitment import Commitment
from gateway.webpages import Lang

WORDS: dict[Lang, dict[str, str]] = {
    "zh": {
        "queue": "信用修复申请", "pending": "待审核", "approved": "已同意", "rejected": "不予修复",
        "application": "申请编号", "enterprise": "企业", "penalty": "处罚信息",
        "applied_at": "申请时间", "due": "审核时限", "status": "状态", "overdue": "已超时",
        "none": "没有申请。", "statement": "申请说明", "commitment": "信用承诺",
        "accepted_at": "承诺时间", "evidence": "证明材料", "download": "下载",
        "decision": "审核结果", "reason": "理由", "approve": "同意修复", "reject": "不予修复",
        "reason_required": "不予修复须说明理由", "decided_by": "审核人",
        "decision_number": "决定书文号",
        "decision_date": "处罚决定日期", "violation": "违法行为", "content": "处罚内容",
        "department": "审核部门",
        "stale": "该申请已被审核。", "back": "返回列表", "size": "大小", "type": "类型",
    },
    "en": {
        "queue": "Credit repair applications", "pending": "Pending", "approved": "Approved",
        "rejected": "Rejected", "application": "Application", "enterprise": "Enterprise",
        "penalty": "Penalty", "applied_at": "Applied", "due": "Review due", "status": "Status",
        "overdue": "Overdue", "none": "No applications.", "statement": "Statement",
        "commitment": "Credit commitment", "accepted_at": "Accepted", "evidence": "Evidence",
        "download": "Download", "decision": "Decision", "reason": "Reason",
        "approve": "Approve repair", "reject": "Reject", "reason_required":
        "A rejection needs a reason", "decided_by": "Decided by",
        "decision_number": "Decision number", "decision_date": "Decision date",
        "violation": "Violation", "content": "Penalty",
        "department": "Reviewing department",
        "stale": "This application has been decided already.", "back": "Back to the list",
        "size": "Size", "type": "Type",
    },
}  # fmt: skip
STATUSES = ("pending", "approved", "rejected")


def _late(item: Mapping[str, Any], now: datetime) -> bool:
    return item["status"] == "pending" and datetime.fromisoformat(item["review_due_at"]) < now


def queue_page(
    lang: Lang, status: str, items: Sequence[Mapping[str, Any]], names: facts.Names, now: datetime
) -> str:
    w = WORDS[lang]
    tabs = " · ".join(
        f'<a href="{esc(href("/dashboard/repairs", lang, status=s))}"'
        + (' aria-current="page"' if s == status else "")
        + f">{esc(w[s])}</a>"
        for s in STATUSES
    )
    rows = "".join(
        f'<tr><td><a href="{esc(href("/dashboard/repairs/" + a["id"], lang))}">{esc(a["id"])}</a>'
        f"</td><td>{esc(a['credit_code'])} {esc(names.get(a['credit_code'], ''))}</td>"
        f"<td>{a['record_id']}</td><td>{esc(facts.moment(a['applied_at']))}</td>"
        f"<td>{esc(facts.moment(a['review_due_at']))}"
        + (f' <strong class="overdue">{esc(w["overdue"])}</strong>' if _late(a, now) else "")
        + f"</td><td>{esc(w[a['status']])}</td></tr>"
        for a in items
    )
    heads = "".join(
        f"<th>{esc(w[h])}</th>"
        for h in ("application", "enterprise", "penalty", "applied_at", "due", "status")
    )
    table = f"<table><tr>{heads}</tr>{rows}</table>" if items else f"<p>{esc(w['none'])}</p>"
    return (
        f'<main class="board" id="alerts"><section class="repairs"><h2>{esc(w["queue"])}</h2>'
        f'<nav class="tabs">{tabs}</nav>{table}</section></main>'
    )


def _penalty(lang: Lang, penalty: Mapping[str, Any] | None) -> str:
    if penalty is None:
        return ""
    w = WORDS[lang]
    rows = "".join(
        f"<tr><th>{esc(w[key])}</th><td>{esc(str(penalty[field]))}</td></tr>"
        for key, field in (
            ("decision_number", "decision_number"), ("decision_date", "decision_date"),
            ("violation", "violation_type"), ("content", "content"),
        )
        if penalty.get(field)
    )  # fmt: skip
    return f"<h3>{esc(w['penalty'])}</h3><table>{rows}</table>"


def application_page(
    lang: Lang,
    item: Mapping[str, Any],
    penalty: Mapping[str, Any] | None,
    commitment: Commitment,
    name: str,
    csrf: str,
    notice: str | None,
) -> str:
    w = WORDS[lang]
    base = "/dashboard/repairs/" + item["id"]
    files = "".join(
        f"<tr><td>{esc(f['file_name'])}</td><td>{esc(f['media_type'])}</td><td>{f['size']}</td>"
        f"<td><code>{esc(f['sha256'])}</code></td>"
        f'<td><a href="{esc(href(base + "/evidence/" + str(f["id"]), lang))}" download>'
        f"{esc(w['download'])}</a></td></tr>"
        for f in item["evidence"]
    )
    accepted = item["commitment"]
    text = commitment.text.zh if lang == "zh" else commitment.text.en
    title = commitment.title.zh if lang == "zh" else commitment.title.en
    parts = [
        '<main class="board" id="alerts"><section class="repair">',
        f'<p class="flash" role="status">{esc(notice)}</p>' if notice else "",
        f"<h2>{esc(w['application'])} {esc(item['id'])}</h2>",
        f"<p>{esc(w['enterprise'])}: {esc(item['credit_code'])} {esc(name)} · "
        f"{esc(w['department'])}: {esc(item['department'])} · {esc(w['status'])}: "
        f"{esc(w[item['status']])} · {esc(w['due'])}: "
        f"{esc(facts.moment(item['review_due_at']))}</p>",
        _penalty(lang, penalty),
        f"<h3>{esc(w['statement'])}</h3><p>{esc(item['statement'] or '')}</p>",
        f"<h3>{esc(w['commitment'])}: {esc(title)}</h3>",
        f'<pre class="commitment">{esc(text)}</pre>',
        f"<p>{esc(w['accepted_at'])}: {esc(facts.moment(accepted['accepted_at']))} · "
        f"v{esc(accepted['version'])} · SHA-256 <code>{esc(accepted['text_sha256'])}</code></p>",
        f'<h3>{esc(w["evidence"])}</h3><table class="evidence">{files}</table>',
        _decision(lang, item, base, csrf),
        f'<p><a href="{esc(href("/dashboard/repairs", lang))}">← {esc(w["back"])}</a></p>',
        "</section></main>",
    ]
    return "".join(parts)


def _decision(lang: Lang, item: Mapping[str, Any], base: str, csrf: str) -> str:
    w = WORDS[lang]
    decided = item["decision"]
    if decided is not None:
        return (
            f"<h3>{esc(w['decision'])}</h3><p>{esc(w[decided['decision']])} · "
            f"{esc(w['decided_by'])}: {esc(decided['decided_by'])} · "
            f"{esc(facts.moment(decided['decided_at']))}</p>"
            + (f"<p>{esc(w['reason'])}: {esc(decided['reason'])}</p>" if decided["reason"] else "")
        )
    action = esc(href(f"{base}/decision", lang))
    hidden = f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
    return (
        f"<h3>{esc(w['decision'])}</h3>"
        f'<form method="post" action="{action}" class="work">{hidden}'
        f'<label>{esc(w["reason"])}<textarea name="reason" maxlength="2000"></textarea></label>'
        f'<button type="submit" name="decision" value="approve" class="primary">'
        f"{esc(w['approve'])}</button></form>"
        f'<form method="post" action="{action}" class="work">{hidden}'
        f"<label>{esc(w['reason_required'])}"
        f'<textarea name="reason" maxlength="2000" required></textarea></label>'
        f'<button type="submit" name="decision" value="reject">{esc(w["reject"])}</button></form>'
    )
