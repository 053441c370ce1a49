"""The portal's HTML, rendered on the server and escaped here. No script: every
action is a form (POST, CSRF token), every page readable without one."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from gateway.portal.i18n import PURPOSES, SECTIONS, TEXT, word
from gateway.portal.sessions import PortalSession
from gateway.reports.build import CHENGDU
from gateway.webpages import Lang

esc = html.escape
STYLESHEET = "/dashboard/static/dashboard.css?v=2"  # the dashboard's, served once
# The portal's pages; the consents page is this package's, the others come later.
NAV = (
    ("/portal/consents", "nav_consents"),
    ("/portal/access-history", "nav_access"),
    ("/portal/report", "nav_report"),
    ("/portal/disputes", "nav_disputes"),
    ("/portal/repairs", "nav_repairs"),
)


def href(path: str, lang: Lang, **query: str) -> str:
    params = {k: v for k, v in query.items() if v}
    if lang == "en":
        params["lang"] = "en"
    return path + ("?" + urlencode(params) if params else "")


def moment(at: datetime | str) -> str:
    value = datetime.fromisoformat(at) if isinstance(at, str) else at
    return value.astimezone(CHENGDU).strftime("%Y-%m-%d %H:%M")


def document(lang: Lang, title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{esc(title)}</title><link rel="stylesheet" href="{STYLESHEET}">'
        f"</head><body>{body}</body></html>"
    )


def _switch(lang: Lang, path: str, query: Mapping[str, str]) -> str:
    other: Lang = "en" if lang == "zh" else "zh"
    target = esc(href(path, other, **query))
    return f'<a class="switch" href="{target}">{esc(TEXT[lang]["switch"])}</a>'


def header(
    lang: Lang, session: PortalSession, path: str, query: Mapping[str, str] | None = None
) -> str:
    t = TEXT[lang]
    current = ' aria-current="page"'
    links = "".join(
        f'<a href="{esc(href(target, lang))}"'
        f"{current if path.startswith(target) else ''}>{esc(t[key])}</a>"
        for target, key in NAV
    )
    role = word(TEXT, lang, "role_" + session.principal.role)
    who = f"{t['acting_for']}{session.credit_code} · {role}"
    return (
        f'<header class="top"><a class="brand" href="{esc(href("/portal", lang))}">'
        f"{esc(t['title'])}</a><nav>{links}</nav>"
        f'<span class="who">{esc(who)}</span>{_switch(lang, path, query or {})}'
        f'<form method="post" action="{esc(href("/portal/logout", lang))}">'
        f'<input type="hidden" name="csrf" value="{esc(session.csrf)}">'
        f'<button type="submit">{esc(t["logout"])}</button></form></header>'
    )


def layout(
    lang: Lang,
    session: PortalSession,
    title: str,
    main: str,
    path: str,
    query: Mapping[str, str] | None = None,
) -> str:
    """A whole portal page: header (nav, who, language, logout) and `main`."""
    return document(
        lang, title, header(lang, session, path, query) + f'<main class="portal">{main}</main>'
    )


def error_document(lang: Lang, message: str, back: str, *, login: bool = False) -> str:
    t = TEXT[lang]
    again = (
        f' <a href="{esc(href("/portal/login", lang))}">{esc(t["login_again"])}</a>'
        if login
        else ""
    )
    body = (
        f'<main class="login"><div class="card"><h1>{esc(t["error_title"])}</h1>'
        f'<p class="flash error" role="alert">{esc(message)}</p>'
        f'<p><a href="{esc(back)}">{esc(t["back"])}</a>{again}</p></div></main>'
    )
    return document(lang, t["error_title"], body)


def welcome(lang: Lang) -> str:
    t = TEXT[lang]
    items = "".join(f'<li><a href="{esc(href(p, lang))}">{esc(t[k])}</a></li>' for p, k in NAV)
    return f"<h1>{esc(t['title'])}</h1><p>{esc(t['welcome'])}</p><ul>{items}</ul>"


# --- the consent page ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Terms:
    """What a pushed request asks the enterprise to approve."""

    bank_name: str
    client_id: str
    credit_code: str
    purpose: str
    sections: tuple[str, ...]
    valid_until: str
    max_daily_accesses: int | None

    @classmethod
    def of(cls, bank_name: str, client_id: str, details: Mapping[str, Any]) -> Terms:
        limit = details.get("max_daily_accesses")
        return cls(
            bank_name, client_id, str(details["credit_code"]), str(details["purpose"]),
            tuple(str(s) for s in details["sections"]), str(details["valid_until"]),
            int(limit) if limit is not None else None,
        )  # fmt: skip


def terms_block(lang: Lang, terms: Terms) -> str:
    """Exactly the terms the person reads; their SHA-256 is kept with the consent."""
    t = TEXT[lang]
    sections = "".join(f"<li>{esc(word(SECTIONS, lang, s))}</li>" for s in terms.sections)
    limit = str(terms.max_daily_accesses) if terms.max_daily_accesses else t["no_limit"]
    rows = (
        (t["bank"], f"{terms.bank_name} ({terms.client_id})"),
        (t["enterprise"], terms.credit_code),
        (t["purpose"], word(PURPOSES, lang, terms.purpose)),
        (t["valid_until"], moment(terms.valid_until)),
        (t["daily_limit"], limit),
    )
    cells = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    return (
        f'<dl class="terms">{cells}<dt>{esc(t["sections"])}</dt><dd><ul>{sections}</ul></dd></dl>'
    )


def shown_sha256(block: str) -> str:
    return hashlib.sha256(block.encode()).hexdigest()


def consent_page(
    lang: Lang, session: PortalSession, block: str, client_id: str, request_uri: str
) -> str:
    t = TEXT[lang]
    query = {"client_id": client_id, "request_uri": request_uri}
    form = (
        f'<form method="post" action="/oauth/authorize">'
        f'<input type="hidden" name="csrf" value="{esc(session.csrf)}">'
        f'<input type="hidden" name="client_id" value="{esc(client_id)}">'
        f'<input type="hidden" name="request_uri" value="{esc(request_uri)}">'
        f'<input type="hidden" name="lang" value="{lang}">'
        f'<button type="submit" name="decision" value="approve" class="primary">'
        f"{esc(t['approve'])}</button> "
        f'<button type="submit" name="decision" value="decline">{esc(t["decline"])}</button>'
        "</form>"
    )
    main = f"<h1>{esc(t['consent_title'])}</h1><p>{esc(t['consent_intro'])}</p>{block}{form}"
    return layout(lang, session, t["consent_title"], main, "/oauth/authorize", query)


# --- the consents page -------------------------------------------------------------


def _status(lang: Lang, status: str) -> str:
    return f'<span class="status {esc(status)}">{esc(word(TEXT, lang, "status_" + status))}</span>'


def _channel(lang: Lang, channel: str) -> str:
    return word(TEXT, lang, "channel_" + channel.split(":", 1)[0])


def consent_rows(lang: Lang, items: Sequence[Mapping[str, Any]]) -> str:
    t = TEXT[lang]
    if not items:
        return f"<h1>{esc(t['consents_title'])}</h1><p>{esc(t['none'])}</p>"
    heads = ("bank", "purpose", "sections", "valid", "channel", "status", "used", "actions")
    head = "".join(f"<th>{esc(t[h])}</th>" for h in heads)
    rows = []
    for item in items:
        sections = "、".join(word(SECTIONS, lang, s) for s in item["scopes"])
        action = ""
        if item["status"] == "active":
            target = href(f"/portal/consents/{item['id']}/revoke", lang)
            action = f'<a class="button" href="{esc(target)}">{esc(t["revoke"])}</a>'
        rows.append(
            f'<tr id="{esc(item["id"])}"><td>{esc(item["bank_name"])}</td>'
            f"<td>{esc(word(PURPOSES, lang, item['purpose']))}</td><td>{esc(sections)}</td>"
            f"<td>{esc(moment(item['valid_from']))} – {esc(moment(item['valid_until']))}</td>"
            f"<td>{esc(_channel(lang, item['channel']))}</td>"
            f"<td>{_status(lang, item['status'])}</td><td>{item['times_used']}</td>"
            f"<td>{action}</td></tr>"
        )
    return (
        f"<h1>{esc(t['consents_title'])}</h1><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def revoke_confirmation(lang: Lang, session: PortalSession, item: Mapping[str, Any]) -> str:
    t = TEXT[lang]
    target = href(f"/portal/consents/{item['id']}/revoke", lang)
    facts = (
        (t["bank"], item["bank_name"]),
        (t["purpose"], word(PURPOSES, lang, item["purpose"])),
        (t["valid_until"], moment(item["valid_until"])),
    )
    cells = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    return (
        f"<h1>{esc(t['revoke_title'])}</h1><dl>{cells}</dl><p>{esc(t['revoke_text'])}</p>"
        f'<form method="post" action="{esc(target)}">'
        f'<input type="hidden" name="csrf" value="{esc(session.csrf)}">'
        f'<button type="submit" class="danger">{esc(t["revoke_yes"])}</button> '
        f'<a href="{esc(href("/portal/consents", lang))}">{esc(t["cancel"])}</a></form>'
    )
