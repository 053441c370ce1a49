"""The dashboard's HTML, rendered on the server and escaped here, in one place.

The browser script never builds markup: a live update carries the row this
module rendered, so a row looks the same whether it came with the page or
over the stream.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from gateway.dashboard import facts
from gateway.dashboard.i18n import (
    ACTION,
    KIND,
    PLATFORM,
    RULE,
    SEVERITY,
    STATUS,
    TEXT,
    alert_title,
    label,
)
from gateway.dashboard.repository import (
    STATUS_FILTERS,
    DeadLetter,
    Filters,
    OverdueRepair,
    PlatformFigures,
)
from gateway.webpages import Lang
from policies.risk.base import SEVERITIES

esc = html.escape
ASSET_VERSION = "2"


when = facts.moment


def href(path: str, lang: Lang, **query: str) -> str:
    params = {k: v for k, v in query.items() if v}
    if lang == "en":
        params["lang"] = "en"
    return path + ("?" + urlencode(params) if params else "")


def document(lang: Lang, title: str, body: str, *, script: bool = False) -> str:
    scripts = (
        f'<script src="/dashboard/static/charts.js?v={ASSET_VERSION}" defer></script>'
        f'<script src="/dashboard/static/dashboard.js?v={ASSET_VERSION}" defer></script>'
        if script
        else ""
    )
    return (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        f'<link rel="stylesheet" href="/dashboard/static/dashboard.css?v={ASSET_VERSION}">'
        f"{scripts}</head><body>{body}</body></html>"
    )


def login_body(lang: Lang, csrf: str, error: str | None) -> str:
    t = TEXT[lang]
    message = f'<p class="flash error" role="alert">{esc(error)}</p>' if error else ""
    other = "zh" if lang == "en" else "en"
    return (
        '<main class="login"><form class="card" method="post" '
        f'action="{esc(href("/dashboard/login", lang))}">'
        f"<h1>{esc(t['title'])}</h1>{message}"
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        f'<label>{esc(t["name"])}<input name="name" autocomplete="username" required autofocus>'
        f'</label><label>{esc(t["password"])}<input name="password" type="password" '
        'autocomplete="current-password" required></label>'
        f'<button type="submit" class="primary">{esc(t["login"])}</button>'
        f'<p class="switch"><a href="/dashboard/login?lang={other}">{esc(t["switch"])}</a></p>'
        "</form></main>"
    )


def header(lang: Lang, user: str, role: str, csrf: str, here: str, query: Mapping[str, str]) -> str:
    t = TEXT[lang]
    other_lang: Lang = "zh" if lang == "en" else "en"
    switch = href(here, other_lang, **query)
    return (
        f'<a class="skip" href="#alerts">{esc(t["skip"])}</a>'
        f'<header class="top"><a class="brand" href="{esc(href("/dashboard", lang))}">'
        f"{esc(t['title'])}</a>"
        f'<nav><span class="who">{esc(t["signed_in"])}<strong id="user">{esc(user)}</strong>'
        f' · <span id="role" data-role="{esc(role)}">{esc(t["role_" + role])}</span></span>'
        f'<a href="{esc(switch)}" id="lang-switch">{esc(t["switch"])}</a>'
        f'<form method="post" action="/dashboard/logout" class="inline">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        f'<button type="submit" class="link">{esc(t["logout"])}</button></form></nav></header>'
    )


def _code_cell(code: str, lang: Lang, names: facts.Names) -> str:
    """A credit code linking to its alerts, the enterprise's name beside it."""
    link = href("/dashboard", lang, credit_code=code, status="all")
    name = names.get(code)
    return f'<a href="{esc(link)}">{esc(code)}</a>' + (
        f' <span class="ename">{esc(name)}</span>' if name else ""
    )


def alert_row(alert: Mapping[str, Any], lang: Lang, names: facts.Names) -> str:
    severity, status = str(alert["severity"]), str(alert["status"])
    rank = SEVERITIES.index(severity) if severity in SEVERITIES else -1
    seen = datetime.fromisoformat(str(alert["last_seen_at"]))
    code = alert.get("credit_code") or ""
    code_cell = _code_cell(code, lang, names) if code else "—"
    title = alert_title(str(alert["title"]), str(alert["rule"]), lang)
    detail = href(f"/dashboard/alerts/{alert['id']}", lang)
    return (
        f'<tr data-id="{esc(str(alert["id"]))}" data-severity="{esc(severity)}" '
        f'data-status="{esc(status)}" data-rank="{rank}" data-seen="{int(seen.timestamp())}">'
        f"<td>{_badge('sev', severity, label(SEVERITY, lang, severity))}</td>"
        f"<td>{esc(label(RULE, lang, str(alert['rule'])))}</td>"
        f'<td class="title"><a href="{esc(detail)}">{esc(title)}</a></td>'
        f'<td class="mono">{code_cell}</td>'
        f'<td class="mono subject">{esc(str(alert["subject"]))}</td>'
        f'<td><span class="status status-{esc(status)}">'
        f"{esc(label(STATUS, lang, status))}</span></td>"
        f'<td class="num">{len(alert["evidence"])}</td>'
        f'<td class="time">{esc(when(str(alert["first_seen_at"])))}</td>'
        f'<td class="time">{esc(when(seen))}</td></tr>'
    )


def _select(name: str, caption: str, options: Sequence[tuple[str, str]], chosen: str) -> str:
    items = "".join(
        f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>{esc(text)}</option>'
        for v, text in options
    )
    return f'<label>{esc(caption)}<select name="{name}">{items}</select></label>'


def filter_bar(lang: Lang, filters: Filters, rules: Sequence[str]) -> str:
    t = TEXT[lang]
    statuses = [
        (s, t["active"] if s == "active" else t["any"] if s == "all" else label(STATUS, lang, s))
        for s in STATUS_FILTERS
    ]
    severities = [("", t["any"])] + [(s, label(SEVERITY, lang, s)) for s in reversed(SEVERITIES)]
    rule_options = [("", t["any"])] + [(r, label(RULE, lang, r)) for r in rules]
    hidden = '<input type="hidden" name="lang" value="en">' if lang == "en" else ""
    return (
        f'<form class="filters" method="get" action="/dashboard" aria-label="{esc(t["filters"])}">'
        f"{hidden}{_select('status', t['status'], statuses, filters.status)}"
        f"{_select('severity', t['severity'], severities, filters.severity)}"
        f"{_select('rule', t['rule'], rule_options, filters.rule)}"
        f'<label>{esc(t["credit_code"])}<input name="credit_code" maxlength="18" '
        f'value="{esc(filters.credit_code)}" class="mono" spellcheck="false"></label>'
        f'<button type="submit" class="primary">{esc(t["apply"])}</button>'
        f'<a href="{esc(href("/dashboard", lang))}">{esc(t["reset"])}</a></form>'
    )


def counts_strip(lang: Lang, counts: Mapping[str, int]) -> str:
    t = TEXT[lang]
    cards = "".join(
        f'<a class="count sev-{s}" href="{esc(href("/dashboard", lang, severity=s))}">'
        f'<span class="n" data-count="{s}">{counts.get(s, 0)}</span>'
        f'<span class="label">{esc(label(SEVERITY, lang, s))}</span></a>'
        for s in reversed(SEVERITIES)
    )
    return (
        f'<section class="counts" aria-label="{esc(t["open_by_severity"])}">'
        f"<h2>{esc(t['open_by_severity'])}</h2><div>{cards}</div></section>"
    )


def dead_letters(lang: Lang, total: int, items: Sequence[DeadLetter]) -> str:
    """Shown only when the monitor gave up on an event: operators must look."""
    if not total:
        return ""
    t = TEXT[lang]
    rows = "".join(
        f"<tr><td>{esc(d.event_id)}</td><td>{esc(d.kind)}</td>"
        f"<td>{esc(facts.moment(d.at))}</td><td>{esc(d.reason)}</td></tr>"
        for d in items
    )
    return (
        f'<section class="dead-letters" aria-label="{esc(t["dead_letters"])}">'
        f'<h2>{esc(t["dead_letters"])} <span class="n" data-dead-letters>{total}</span></h2>'
        f"<p>{esc(t['dead_letters_note'])}</p><table>{rows}</table></section>"
    )


def overdue_repairs(lang: Lang, total: int, items: Sequence[OverdueRepair]) -> str:
    """Shown only when a credit repair application waits past its review time."""
    if not total:
        return ""
    t = TEXT[lang]
    rows = "".join(
        f"<tr><td>{esc(r.id)}</td><td>{esc(r.credit_code)}</td><td>{esc(r.department)}</td>"
        f"<td>{esc(facts.moment(r.applied_at))}</td><td>{esc(facts.moment(r.review_due_at))}</td>"
        "</tr>"
        for r in items
    )
    heads = "".join(
        f"<th>{esc(t[h])}</th>"
        for h in ("repair_id", "credit_code", "repair_department", "repair_applied", "repair_due")
    )
    return (
        f'<section class="dead-letters repairs-overdue" aria-label="{esc(t["repairs_overdue"])}">'
        f'<h2>{esc(t["repairs_overdue"])} <span class="n" data-repairs-overdue>{total}</span></h2>'
        f"<table><tr>{heads}</tr>{rows}</table></section>"
    )


def alert_table(lang: Lang, items: Sequence[Mapping[str, Any]], total: int, filters: Filters,
                revision: int, names: facts.Names) -> str:  # fmt: skip
    t = TEXT[lang]
    heads = ("severity", "rule", "alert_title", "credit_code", "subject", "status", "evidence",
             "first_seen", "last_seen")  # fmt: skip
    rows = "".join(alert_row(a, lang, names) for a in items)
    stream = href("/dashboard/stream", lang, **filters.query())
    return (
        f'<section class="alerts" id="alerts"><div class="bar"><h2>{esc(t["alerts"])}</h2>'
        f'<span id="shown" data-format="{esc(t["shown"])}" data-shown="{len(items)}" '
        f'data-total="{total}">{esc(t["shown"].format(shown=len(items), total=total))}</span>'
        f'<span id="live" class="live" data-live="{esc(t["live"])}" '
        f'data-reconnecting="{esc(t["reconnecting"])}"></span></div>'
        f'<table id="alert-table" data-stream="{esc(stream)}" data-revision="{revision}">'
        "<thead><tr>"
        + "".join(f'<th scope="col">{esc(t[h])}</th>' for h in heads)
        + f"</tr></thead><tbody>{rows}</tbody></table>"
        f'<p id="empty" class="empty"{" hidden" if items else ""}>{esc(t["empty"])}</p></section>'
    )


def chart_data(lang: Lang, days: Sequence[str], per_rule: Mapping[str, Sequence[int]],
               platforms: Sequence[PlatformFigures]) -> str:  # fmt: skip
    """The charts' numbers and labels as JSON in a non-executable script element."""
    t = TEXT[lang]
    data = {
        "perDay": {
            "title": t["per_day"],
            "categories": [d[5:] for d in days],
            "series": [
                {"key": r, "name": label(RULE, lang, r), "values": list(v)}
                for r, v in per_rule.items()
            ],
        },
        "perPlatform": {
            "title": t["per_platform"],
            "categories": [label(PLATFORM, lang, p.platform) for p in platforms],
            "bars": {"name": t["volume"], "values": [p.volume_fen // 1_000_000 for p in platforms]},
            "line": {
                "name": t["overdue_ratio"],
                "values": [round(p.overdue_ratio, 4) for p in platforms],
            },
            "counts": [p.loans for p in platforms],
            "countUnit": t["loans"],
        },
    }
    # "</" cannot end the element early once escaped as in JSON.
    payload = orjson.dumps(data).decode().replace("</", "<\\/")
    return f'<script type="application/json" id="chart-data">{payload}</script>'


def charts(lang: Lang) -> str:
    t = TEXT[lang]
    return (
        f'<section class="charts"><h2>{esc(t["charts"])}</h2><div class="chart-grid">'
        f'<figure id="chart-per-day" class="chart"><figcaption>{esc(t["per_day"])}</figcaption>'
        "</figure>"
        f'<figure id="chart-per-platform" class="chart"><figcaption>{esc(t["per_platform"])}'
        "</figcaption></figure></div></section>"
    )


def _badge(kind: str, value: str, text: str) -> str:
    return f'<span class="{kind} {kind}-{esc(value)}">{esc(text)}</span>'


def _attrs(attrs: Mapping[str, Any], lang: Lang, names: facts.Names) -> str:
    return "".join(
        f'<span class="kv"><b>{esc(k)}</b> {esc(v)}</span>'
        for k, v in facts.rows(attrs, lang, names)
    )


def evidence_table(lang: Lang, ids: Sequence[str], events: Mapping[str, Mapping[str, Any]],
                   names: facts.Names) -> str:  # fmt: skip
    t = TEXT[lang]
    rows = []
    for event_id in ids:
        event = events.get(event_id)
        if event is None:
            missing = esc(t["not_stored"])
            rows.append(f'<tr><td class="mono">{esc(event_id)}</td>'
                        f'<td colspan="4" class="muted">{missing}</td></tr>')  # fmt: skip
            continue
        rows.append(
            f'<tr><td class="mono">{esc(event_id)}</td>'
            f"<td>{esc(label(KIND, lang, str(event['kind'])))}</td>"
            f'<td class="time">{esc(when(event["occurred_at"]))}</td>'
            f"<td>{esc(facts.value_text('credit_code', event['credit_code'], lang, names))}</td>"
            f"<td>{_attrs(event['attrs'], lang, names)}</td></tr>"
        )
    heads = ("event", "kind", "occurred_at", "credit_code", "attrs")
    return (
        f'<table class="evidence"><thead><tr>{"".join(f"<th>{esc(t[h])}</th>" for h in heads)}'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def history_list(lang: Lang, history: Sequence[Mapping[str, Any]], rule: str) -> str:
    t = TEXT[lang]

    def note(h: Mapping[str, Any]) -> str:
        # The monitor's "raised" line notes the title it raised the alert with.
        text = str(h["note"])
        return alert_title(text, rule, lang) if h["actor"] == "monitor" else text

    items = "".join(
        f'<li><span class="time">{esc(when(str(h["at"])))}</span> '
        f"<strong>{esc(label(ACTION, lang, str(h['action'])))}</strong> "
        f'<span class="mono">{esc(str(h["actor"]))}</span>'
        + (f'<p class="note">{esc(note(h))}</p>' if h.get("note") else "")
        + "</li>"
        for h in history
    )
    return f'<ol class="history" id="history" aria-label="{esc(t["history"])}">{items}</ol>'


def work_forms(lang: Lang, alert: Mapping[str, Any], role: str, csrf: str) -> str:
    t = TEXT[lang]
    if alert["status"] == "resolved":
        return f'<p class="muted">{esc(t["closed"])}</p>'
    if role != "risk_officer":
        return f'<p class="muted">{esc(t["read_only"])}</p>'
    actions = ["resolve"] if alert["status"] == "acknowledged" else ["acknowledge", "resolve"]
    base = f"/dashboard/alerts/{alert['id']}/"
    forms = "".join(
        f'<form method="post" class="work" action="{esc(href(base + action, lang))}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        f'<label>{esc(t["note"])}<textarea name="note" required maxlength="2000" rows="2" '
        f'placeholder="{esc(t["note_hint"])}"></textarea></label>'
        f'<button type="submit" class="{"primary" if action == "acknowledge" else "danger"}" '
        f'id="{action}">{esc(t[action])}</button></form>'
        for action in actions
    )
    return f'<div class="forms">{forms}</div>'


def _enterprise(code: str | None, lang: Lang, names: facts.Names) -> str:
    if not code:
        return "—"
    loans = href(f"/dashboard/enterprises/{code}/loans", lang)
    return (
        f'<span class="mono">{esc(code)}</span> <span class="ename">{esc(names.get(code, ""))}'
        f'</span><br><a id="loans-link" href="{esc(loans)}">{esc(TEXT[lang]["view_loans"])}</a>'
    )


def alert_page(lang: Lang, alert: Mapping[str, Any], events: Mapping[str, Mapping[str, Any]],
               names: facts.Names, role: str, csrf: str) -> str:  # fmt: skip
    t = TEXT[lang]
    severity, status = str(alert["severity"]), str(alert["status"])
    found = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts.rows(alert["details"], lang, names)
    )
    about = (
        f"<dt>{esc(t['rule'])}</dt><dd>{esc(label(RULE, lang, str(alert['rule'])))}</dd>"
        f'<dt>{esc(t["subject"])}</dt><dd class="mono">{esc(str(alert["subject"]))}</dd>'
        f"<dt>{esc(t['enterprise'])}</dt>"
        f'<dd id="enterprise">{_enterprise(alert["credit_code"], lang, names)}</dd>'
        f"<dt>{esc(t['first_seen'])}</dt><dd>{esc(when(str(alert['first_seen_at'])))}</dd>"
        f"<dt>{esc(t['last_seen'])}</dt><dd>{esc(when(str(alert['last_seen_at'])))}</dd>"
    )
    title = alert_title(str(alert["title"]), str(alert["rule"]), lang)
    return (
        f'<main class="detail"><p><a href="{esc(href("/dashboard", lang))}">'
        f"← {esc(t['back'])}</a></p>"
        f"<h1>{_badge('sev', severity, label(SEVERITY, lang, severity))} {esc(title)}</h1>"
        f'<p class="mono muted">{esc(t["alert"])} {esc(str(alert["id"]))} · '
        f'<span id="alert-status" class="status status-{esc(status)}" '
        f'data-status="{esc(status)}">{esc(label(STATUS, lang, status))}</span></p>'
        f'<p class="muted">{esc(t["times_note"])}</p>'
        f'<div class="columns"><section><h2>{esc(t["details"])}</h2><dl>{about}</dl>'
        f'<h2>{esc(t["facts"])}</h2><dl id="facts">{found}</dl>'
        f"{work_forms(lang, alert, role, csrf)}</section>"
        f"<section><h2>{esc(t['history'])}</h2>"
        f"{history_list(lang, alert['history'], str(alert['rule']))}</section></div>"
        f"<section><h2>{esc(t['evidence'])} ({len(alert['evidence'])})</h2>"
        f"{evidence_table(lang, alert['evidence'], events, names)}</section></main>"
    )


_LOAN_COLUMNS = (
    "platform", "loan_no", "bank_code", "status", "amount_fen", "outstanding_fen",
    "days_overdue", "core_enterprise_code", "first_event_at", "last_event_at",
)  # fmt: skip


def loans_page(lang: Lang, code: str, items: Sequence[Mapping[str, Any]],
               names: facts.Names) -> str:  # fmt: skip
    """The enterprise's loans in the ledger, one row each, oldest first."""
    t = TEXT[lang]
    heads = "".join(f"<th>{esc(facts.field_label(c, lang))}</th>" for c in _LOAN_COLUMNS)
    rows = "".join(
        f'<tr data-loan="{esc(str(loan["loan_no"]))}" data-status="{esc(str(loan["status"]))}">'
        + "".join(
            f"<td>{esc(facts.value_text(c, loan[c], lang, names))}</td>" for c in _LOAN_COLUMNS
        )
        + "</tr>"
        for loan in items
    )
    name = facts.with_name(code, names, lang)
    back = href("/dashboard", lang, credit_code=code, status="all")
    return (
        f'<main class="detail"><p><a href="{esc(back)}">← {esc(t["back"])}</a></p>'
        f"<h1>{esc(t['loans_of'].format(name=name))}</h1>"
        f'<p class="muted">{esc(t["times_note"])}</p>'
        f"<section><h2>{esc(t['enterprise_loans'])} ({len(items)})</h2>"
        f'<table class="evidence" id="loans"><thead><tr>{heads}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        f'<p class="empty"{" hidden" if items else ""}>{esc(t["no_loans"])}</p></section></main>'
    )


def error_body(lang: Lang, message: str, back: str) -> str:
    """A refused form, for a person: what happened and the way back."""
    t = TEXT[lang]
    return (
        f'<main class="login"><div class="card"><h1>{esc(t["refused"])}</h1>'
        f'<p class="flash error" role="alert">{esc(message)}</p>'
        f'<p><a id="back" href="{esc(back)}">← {esc(t["back_to"])}</a></p></div></main>'
    )
