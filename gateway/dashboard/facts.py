"""How one fact of an alert, an event or a ledger row reads on the dashboard: its
label in the page's language and its value in words an officer uses: money in
yuan (万元 for large round sums in Chinese), moments in Beijing time, codes
as their words, credit codes with the enterprise's name beside them.

Values come back as plain text; `views.py` escapes them. Keyed hashes and
masks (`*_hash`, `*_masked`) are never shown: they identify people and tell
an officer nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from pydantic import AliasChoices

from gateway.dashboard.i18n import FIELD, TEXT, VALUE_WORDS, label
from gateway.dashboard.repository import CHENGDU
from gateway.identifiers import is_valid_credit_code
from gateway.records.schemas import SCHEMAS
from gateway.webpages import Lang

# Fields holding moments (ISO 8601 with an offset) and credit codes.
MOMENTS = frozenset({"since", "until", "occurred_at", "first_event_at", "last_event_at"})
CODES = frozenset({"credit_code", "core_enterprise_code", "enterprises", "suppliers"})
_WAN_FEN = 1_000_000  # 1 万元 in fen
_HAN = re.compile(r"[\u4e00-\u9fff]")

Names = Mapping[str, str]


def shown(key: str) -> bool:
    return not key.endswith(("_hash", "_masked"))


def yuan(fen: int, lang: Lang) -> str:
    """Exact: "12,345.67 元" / "¥12,345.67"; in Chinese "50.00 万元" from 10 万元 up
    when that is exact (whole hundreds of yuan)."""
    sign, fen = ("-" if fen < 0 else ""), abs(fen)
    if lang == "zh" and fen >= 10 * _WAN_FEN and fen % 10_000 == 0:
        return f"{sign}{fen // _WAN_FEN:,}.{fen % _WAN_FEN // 10_000:02d} 万元"
    whole = f"{fen // 100:,}.{fen % 100:02d}"
    return f"{sign}{whole} 元" if lang == "zh" else f"{sign}¥{whole}"


def moment(value: str | datetime) -> str:
    """Beijing wall-clock time to the minute."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(CHENGDU).strftime("%Y-%m-%d %H:%M")


@functools.cache
def _catalogue_names() -> dict[str, str]:
    """Record fields' Chinese names, as the catalogue publishes them (the
    schemas' first Chinese alias), e.g. decision_number -> 行政处罚决定书文号."""
    names: dict[str, str] = {}
    for schema in SCHEMAS.values():
        for name, info in schema.model_fields.items():
            aliases = info.validation_alias
            if isinstance(aliases, AliasChoices):
                chinese = [a for a in aliases.choices if isinstance(a, str) and _HAN.search(a)]
                if chinese:
                    names.setdefault(name, chinese[0])
    return names


def field_label(key: str, lang: Lang) -> str:
    known = FIELD[lang].get(key)
    if known is not None:
        return known
    if lang == "zh":
        return _catalogue_names().get(key, key)
    words = key.removesuffix("_fen").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def with_name(code: str, names: Names, lang: Lang) -> str:
    name = names.get(code)
    if not name:
        return code
    return f"{name}（{code}）" if lang == "zh" else f"{name} ({code})"


def value_text(key: str, value: Any, lang: Lang, names: Names) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return TEXT[lang]["yes" if value else "no"]
    if isinstance(value, list):
        return ("、" if lang == "zh" else ", ").join(value_text(key, v, lang, names) for v in value)
    if isinstance(value, dict):
        return "；".join(
            f"{field_label(k, lang)}：{value_text(k, v, lang, names)}"
            for k, v in sorted(value.items())
            if shown(k)
        )
    if key.endswith("_fen") and isinstance(value, int):
        return yuan(value, lang)
    if key == "ratio" and isinstance(value, int | float):
        return f"{value:.1%}"
    if key in MOMENTS and isinstance(value, str | datetime):
        return moment(value)
    if key in CODES and isinstance(value, str):
        return with_name(value, names, lang)
    words = VALUE_WORDS.get(key)
    if words is not None and isinstance(value, str):
        return label(words, lang, value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value if isinstance(value, str) else str(value)


def rows(facts: Mapping[str, Any], lang: Lang, names: Names) -> list[tuple[str, str]]:
    """(label, value) for each fact worth showing, in a stable order."""
    return [
        (field_label(k, lang), value_text(k, v, lang, names))
        for k, v in sorted(facts.items())
        if shown(k) and v not in (None, "", {}, [])
    ]


def codes_in(values: Iterable[Any]) -> set[str]:
    """Every credit code among these values (nested in lists and mappings too)."""
    found: set[str] = set()
    for value in values:
        if isinstance(value, str) and len(value) == 18 and is_valid_credit_code(value):
            found.add(value)
        elif isinstance(value, list | tuple):
            found |= codes_in(value)
        elif isinstance(value, Mapping):
            found |= codes_in(value.values())
    return found
