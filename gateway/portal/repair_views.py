"""The HTML of the portal's credit repair pages: the enterprise's penalties with
whether each may be repaired (and why not, and from when), the application form
(evidence uploads, the commitment in full with its accept box), and an
application's review and decision. Escaped here (views.esc), no script."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.portal.i18n import TEXT
from gateway.portal.views import esc, href, moment
from gateway.repairs.commitment import Commitment
from gateway.repairs.eligibility import PenaltyEligibility
from gateway.webpages import Lang

REPAIRS = "/portal/repairs"


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MiB" if size >= 1024 * 1024 else f"{size // 1024} KiB"


def _status(lang: Lang, status: str) -> str:
    return f'<span class="status {esc(status)}">{esc(TEXT[lang]["status_" + status])}</span>'


def _row(lang: Lang, judged: PenaltyEligibility, pending: str | None) -> str:
    t = TEXT[lang]
    result = judged.eligibility
    if pending is not None:
        action = (
            f'<a href="{esc(href(f"{REPAIRS}/{pending}", lang))}">{esc(t["pending_review"])}</a>'
        )
    elif result.eligible:
        target = href(f"{REPAIRS}/apply", lang, record_id=str(judged.record_id))
        action = f'<a class="button" href="{esc(target)}">{esc(t["apply"])}</a>'
    else:
        action = ""
    words = judged.zh if lang == "zh" else judged.en
    day = judged.decision_date.isoformat() if judged.decision_date else "—"
    eligible = "eligible" if result.eligible else "not-eligible"
    return (
        f'<tr id="penalty-{judged.record_id}" class="{eligible}"><td>{judged.record_id}</td>'
        f"<td>{esc(judged.decision_number or '—')}</td><td>{esc(day)}</td>"
        f"<td>{esc(judged.department)}</td><td>{esc(words)}</td><td>{action}</td></tr>"
    )


def _applications(lang: Lang, items: Sequence[Mapping[str, Any]]) -> str:
    t = TEXT[lang]
    if not items:
        return f"<p>{esc(t['no_applications'])}</p>"
    rows = "".join(
        f'<tr><td><a href="{esc(href(REPAIRS + "/" + a["id"], lang))}">{esc(a["id"])}</a></td>'
        f"<td>{int(a['record_id'])}</td><td>{esc(moment(a['applied_at']))}</td>"
        f"<td>{_status(lang, a['status'])}</td></tr>"
        for a in items
    )
    heads = "".join(f"<th>{esc(t[h])}</th>" for h in ("application", "record_id", "applied_at",
                                                       "status"))  # fmt: skip
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"


def overview(
    lang: Lang,
    penalties: Sequence[tuple[PenaltyEligibility, str | None]],
    applications: Sequence[Mapping[str, Any]],
) -> str:
    t = TEXT[lang]
    heads = "".join(
        f"<th>{esc(t[h])}</th>"
        for h in ("record_id", "decision_number", "decision_date", "source", "eligibility",
                  "actions")
    )  # fmt: skip
    rows = "".join(_row(lang, judged, pending) for judged, pending in penalties)
    table = (
        f"<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"
        if penalties
        else f"<p>{esc(t['no_penalties'])}</p>"
    )
    return (
        f"<h1>{esc(t['repairs_title'])}</h1><p>{esc(t['repairs_intro'])}</p>"
        f"<h2>{esc(t['penalty'])}</h2>{table}"
        f"<h2>{esc(t['applications'])}</h2>{_applications(lang, applications)}"
    )


def commitment_block(lang: Lang, commitment: Commitment) -> str:
    """The commitment in full: the Chinese text (what is accepted and hashed), and the
    English translation on the English page."""
    t = TEXT[lang]
    text = commitment.text.zh + ("\n\n" + commitment.text.en if lang == "en" else "")
    title = commitment.title.zh if lang == "zh" else commitment.title.en
    return (
        f"<h2>{esc(t['commitment'])}: {esc(title)}</h2>"
        f'<pre class="commitment" id="commitment">{esc(text)}</pre>'
        f"<p>v{esc(commitment.version)} · SHA-256 <code>{esc(commitment.sha256)}</code></p>"
    )


def apply_form(
    lang: Lang,
    csrf: str,
    judged: PenaltyEligibility,
    commitment: Commitment,
    limits: Mapping[str, int],
) -> str:
    t = TEXT[lang]
    evidence = t["evidence"].format(
        max_file=_mib(limits["max_file"]), max_total=_mib(limits["max_total"]),
        max_files=limits["max_files"],
    )  # fmt: skip
    facts = (
        (t["record_id"], str(judged.record_id)),
        (t["decision_number"], judged.decision_number or "—"),
        (t["source"], judged.department),
        (t["eligibility"], judged.zh if lang == "zh" else judged.en),
    )
    cells = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    return (
        f"<h1>{esc(t['apply_title'])}</h1><dl>{cells}</dl>"
        f'<form method="post" action="{esc(href(REPAIRS + "/apply", lang))}" '
        'enctype="multipart/form-data">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        f'<input type="hidden" name="record_id" value="{judged.record_id}">'
        f'<p><label for="statement">{esc(t["statement"])}</label><br>'
        '<textarea id="statement" name="statement" maxlength="2000" rows="4" cols="60">'
        "</textarea></p>"
        f'<p><label for="evidence">{esc(evidence)}</label><br>'
        '<input type="file" id="evidence" name="evidence" multiple required '
        'accept="application/pdf,image/jpeg,image/png"></p>'
        f"{commitment_block(lang, commitment)}"
        f'<label><input type="checkbox" id="accept" name="accept" value="{esc(commitment.sha256)}"'
        f" required> {esc(t['accept'])}</label>"
        f'<p><button type="submit" class="primary">{esc(t["submit"])}</button></p></form>'
    )


def application(
    lang: Lang, item: Mapping[str, Any], commitment: Commitment, *, applied: bool
) -> str:
    t = TEXT[lang]
    flash = f'<p class="flash" role="status">{esc(t["applied"])}</p>' if applied else ""
    facts = [
        (t["application"], item["id"]),
        (t["record_id"], str(item["record_id"])),
        (t["department"], item["department"]),
        (t["applied_at"], moment(item["applied_at"])),
        (t["review_due"], moment(item["review_due_at"])),
        (t["statement"], item["statement"] or "—"),
    ]
    decision = item["decision"]
    if decision is not None:
        facts += [(t["decided_at"], moment(decision["decided_at"])),
                  (t["reason"], decision["reason"] or "—")]  # fmt: skip
    cells = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    files = "".join(
        f"<tr><td>{esc(f['file_name'])}</td><td>{esc(f['media_type'])}</td><td>{f['size']}</td>"
        f"<td><code>{esc(f['sha256'])}</code></td></tr>"
        for f in item["evidence"]
    )
    accepted = item["commitment"]
    return (
        f"<h1>{esc(t['application_title'])}</h1>{flash}"
        f'<p data-status="{esc(item["status"])}">{esc(t["status"])}: '
        f"{_status(lang, item['status'])}</p><dl>{cells}</dl>"
        f"<h2>{esc(t['files'])}</h2><table>{files}</table>"
        f"{commitment_block(lang, commitment)}"
        f"<p>{esc(moment(accepted['accepted_at']))} · v{esc(accepted['version'])}</p>"
        f'<p><a href="{esc(href(REPAIRS, lang))}">{esc(t["back"])}</a></p>'
    )
