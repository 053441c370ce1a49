"""The HTML of the portal's record pages: access history, my report, disputes.
Escaped here (views.esc), no script; forms POST with the session's CSRF token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.portal.i18n import PURPOSES, SECTIONS, TEXT, word
from gateway.portal.views import esc, href, moment
from gateway.webpages import Lang

HISTORY, REPORT, DISPUTES = "/portal/access-history", "/portal/report", "/portal/disputes"
# The field that names a record best, per section, first found wins.
_TITLE_FIELDS = (
    "decision_number", "document_number", "case_number", "list_name", "certificate_name",
    "commitment_type", "rating_year", "period", "name",
)  # fmt: skip


def _table(lang: Lang, heads: Sequence[str], rows: Sequence[str]) -> str:
    t = TEXT[lang]
    head = "".join(f"<th>{esc(t[h])}</th>" for h in heads)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cells(*values: str) -> str:
    return "<tr>" + "".join(f"<td>{v}</td>" for v in values) + "</tr>"


# --- access history ------------------------------------------------------------------


def _reader(lang: Lang, entry: Mapping[str, Any]) -> str:
    if entry["client_id"] == "portal":
        return TEXT[lang]["reader_portal"]
    name = entry.get("client_name") or entry["client_id"]
    org = entry.get("org_code")
    return f"{name} ({org})" if org else str(name)


def history(lang: Lang, found: Mapping[str, Any], *, first: bool) -> str:
    t = TEXT[lang]
    rows = [
        _cells(
            esc(moment(entry["at"])), esc(_reader(lang, entry)),
            esc(word(PURPOSES, lang, entry["purpose"]) if entry.get("purpose") else "—"),
            f'<span class="mono">{esc(entry.get("consent_id") or "—")}</span>',
            f'<span class="status {esc(entry["decision"])}">'
            f"{esc(word(TEXT, lang, 'decision_' + entry['decision']))}</span>",
            esc(entry.get("reason") or entry["route"]),
        )
        for entry in found["items"]
    ]  # fmt: skip
    heads = ("at", "reader", "purpose", "consent", "decision", "what")
    body = _table(lang, heads, rows) if rows else f"<p>{esc(t['none'])}</p>"
    links = []
    if not first:
        links.append(f'<a href="{esc(href(HISTORY, lang))}">{esc(t["newest"])}</a>')
    if found["next_cursor"]:
        older = href(HISTORY, lang, cursor=found["next_cursor"])
        links.append(f'<a rel="next" href="{esc(older)}">{esc(t["older"])}</a>')
    nav = f'<p class="pages">{" · ".join(links)}</p>' if links else ""
    return f"<h1>{esc(t['history_title'])}</h1><p>{esc(t['history_intro'])}</p>{body}{nav}"


# --- my report -----------------------------------------------------------------------


def record_title(item: Mapping[str, Any]) -> str:
    for key in _TITLE_FIELDS:
        value = item.get(key)
        if isinstance(value, str | int) and value != "":
            return str(value)
    return str(item.get("source_record_id") or item.get("record_id"))


def _dispute_cell(lang: Lang, item: Mapping[str, Any]) -> str:
    dispute = item.get("dispute")
    if dispute is not None:
        status = dispute["status"]
        shown = f'<span class="status {esc(status)}">{esc(TEXT[lang]["dispute_" + status])}</span>'
        if status != "open":
            shown += (
                f' <a href="{esc(href(_new(item), lang))}">{esc(TEXT[lang]["raise_dispute"])}</a>'
            )
        return shown
    return f'<a href="{esc(href(_new(item), lang))}">{esc(TEXT[lang]["raise_dispute"])}</a>'


def _new(item: Mapping[str, Any]) -> str:
    return f"{DISPUTES}/new?record_id={int(item['record_id'])}"


def _score(lang: Lang, report: Mapping[str, Any]) -> str:
    t = TEXT[lang]
    score = report["score"]
    value = score["value"] if score["value"] is not None else t["not_scored"]
    trend = [
        _cells(esc(point["quarter"]), esc(str(point["value"] if point["value"] is not None
                                              else t["not_scored"])), esc(point["grade"] or "—"))
        for point in report["score_trend"]
    ]  # fmt: skip
    return (
        f'<dl class="terms"><dt>{esc(t["score"])}</dt><dd data-score>{esc(str(value))}</dd>'
        f"<dt>{esc(t['grade'])}</dt><dd data-grade>{esc(score['grade'] or '—')}</dd></dl>"
        f"<h2>{esc(t['trend'])}</h2>" + _table(lang, ("quarter", "score", "grade"), trend)
    )


def report(lang: Lang, report: Mapping[str, Any]) -> str:
    """The report's score, trend and records, each record with its dispute link."""
    t = TEXT[lang]
    links = (
        f'<p><a class="button" href="{esc(href(REPORT + "/print", lang))}">{esc(t["print"])}</a> '
        f'<a class="button" href="{esc(href(REPORT + ".json", lang))}" download>'
        f"{esc(t['download_json'])}</a></p>"
    )
    parts = [
        f"<h1>{esc(t['report_title'])}</h1><p>{esc(t['report_intro'])}</p>{links}",
        f"<h2>{esc(report['enterprise_name'])} · {esc(report['credit_code'])}</h2>",
        _score(lang, report),
    ]
    for name, section in report["sections"].items():
        if name in ("basic", "loans"):
            continue
        parts.append(f'<h2 id="section-{esc(name)}">{esc(word(SECTIONS, lang, name))}</h2>')
        rows = [
            f'<tr id="record-{int(item["record_id"])}"><td>{int(item["record_id"])}</td>'
            f"<td>{esc(record_title(item))}</td><td>{esc(item.get('source_department', ''))}</td>"
            f"<td>{_dispute_cell(lang, item)}</td></tr>"
            for item in section["items"]
        ]
        heads = ("record_id", "record", "source", "dispute")
        parts.append(_table(lang, heads, rows) if rows else f"<p>{esc(t['no_records'])}</p>")
    return "".join(parts)


# --- disputes ------------------------------------------------------------------------


def dispute_list(lang: Lang, items: Sequence[Mapping[str, Any]], *, done: bool) -> str:
    t = TEXT[lang]
    flash = f'<p class="flash" role="status">{esc(t["dispute_done"])}</p>' if done else ""
    rows = [
        f'<tr id="{esc(item["id"])}"><td class="mono">{esc(item["id"])}</td>'
        f"<td>{int(item['record_id'])}</td><td>{esc(item['reason'])}</td>"
        f"<td>{esc(moment(item['opened_at']))}</td>"
        f'<td><span class="status {esc(item["status"])}">'
        f"{esc(t['dispute_' + item['status']])}</span></td>"
        f"<td>{esc(moment(item['resolved_at'])) if item['resolved_at'] else '—'}</td>"
        f"<td>{esc(item['resolution_note'] or '—')}</td></tr>"
        for item in items
    ]
    heads = ("dispute", "record_id", "reason", "opened_at", "status", "resolved_at",
             "resolution")  # fmt: skip
    body = _table(lang, heads, rows) if rows else f"<p>{esc(t['no_disputes'])}</p>"
    to_report = f'<p><a href="{esc(href(REPORT, lang))}">{esc(t["report_title"])}</a></p>'
    return (
        f"<h1>{esc(t['disputes_title'])}</h1>{flash}<p>{esc(t['disputes_intro'])}</p>"
        f"{body}{to_report}"
    )


def dispute_form(lang: Lang, csrf: str, item: Mapping[str, Any]) -> str:
    t = TEXT[lang]
    facts = (
        (t["record_id"], str(int(item["record_id"]))),
        (t["sections"], word(SECTIONS, lang, item["section"])),
        (t["record"], record_title(item)),
        (t["source"], str(item.get("source_department", ""))),
    )
    cells = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    return (
        f"<h1>{esc(t['dispute_new'])}</h1><dl>{cells}</dl>"
        f'<form method="post" action="{esc(href(DISPUTES, lang))}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        f'<input type="hidden" name="record_id" value="{int(item["record_id"])}">'
        f'<p><label for="reason">{esc(t["dispute_reason"])}</label><br>'
        '<textarea id="reason" name="reason" required maxlength="2000" rows="5" cols="60">'
        "</textarea></p>"
        f'<p><button type="submit" class="primary">{esc(t["submit"])}</button></p></form>'
    )
