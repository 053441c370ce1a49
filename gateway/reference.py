"""The API reference at /docs: one page rendered here from /openapi.json.

Not Swagger UI or ReDoc: both load their scripts from a CDN (a blank page on
an air-gapped bank network), and their "try it" cannot sign a private_key_jwt
or a DPoP proof anyway. This page loads nothing: no script, its one style
block allowed by its hash, every value escaped, links only within the page
and to /openapi.json.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.state import state_of

router = APIRouter(include_in_schema=False)

_METHODS = ("get", "post", "put", "patch", "delete")
_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;"
    "color:#1d2330}code{font:13px ui-monospace,monospace;background:#f1f3f6;padding:0 .2em}"
    "table{border-collapse:collapse;margin:.4rem 0 1rem}td,th{border:1px solid #d5d9e0;"
    "padding:.2rem .5rem;text-align:left;vertical-align:top}section{border-top:1px solid "
    "#d5d9e0;margin-top:1.5rem}.m{font-weight:700;text-transform:uppercase}nav li{margin:.1rem 0}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Cache-Control": "no-cache",
}


@router.get("/docs")
async def reference(request: Request) -> HTMLResponse:
    # The document is fixed once the app is built: rendered once per process.
    state = state_of(request)
    if state.reference_page is None:
        state.reference_page = render(request.app.openapi())
    return HTMLResponse(state.reference_page, headers=_HEADERS)


def render(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    operations = [
        (path, method, item[method])
        for path, item in document.get("paths", {}).items()
        for method in _METHODS
        if method in item
    ]
    schemes = document.get("components", {}).get("securitySchemes", {})
    schemas = document.get("components", {}).get("schemas", {})
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    return "".join(
        (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)} API reference</title><style>{_STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1><p>{_text(info.get('summary', ''))}</p>",
            '<p>The machine-readable document: <a href="/openapi.json">/openapi.json</a>. ',
            "Clients authenticate with <code>private_key_jwt</code> at ",
            "<code>/oauth/token</code> (see the README's bank section).</p>",
            "".join(
                f"<p><b>{escape(n)}</b>: {_text(s.get('description', ''))}</p>"
                for n, s in schemes.items()
            ),
            "<nav><h2>Operations</h2><ul>",
            "".join(
                f'<li><a href="#{_anchor(m, p)}"><span class="m">{m}</span> {escape(p)}</a>'
                f" {escape(op.get('summary', ''))}</li>"
                for p, m, op in operations
            ),
            "</ul></nav>",
            "".join(_operation(p, m, op) for p, m, op in operations),
            "<section><h2>Schemas</h2>",
            "".join(_schema_section(name, schema) for name, schema in schemas.items()),
            "</section></body></html>",
        )
    )


def _anchor(method: str, path: str) -> str:
    return f"{method}-" + re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")


def _text(value: str) -> str:
    """Escaped prose with `code` spans (the document's descriptions use backticks)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(value))


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    scopes = sorted({s for need in op.get("security", []) for v in need.values() for s in v})
    parts = [
        f'<section id="{_anchor(method, path)}"><h3><span class="m">{method}</span> ',
        f"<code>{escape(path)}</code></h3><p><b>{escape(op.get('summary', ''))}</b></p>",
        f"<p>{_text(op.get('description', ''))}</p>",
        f"<p>Scope: {', '.join(f'<code>{escape(s)}</code>' for s in scopes)}</p>" if scopes else "",
    ]
    if params := op.get("parameters"):
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p.get('in', ''))}</td>"
            f"<td>{'yes' if p.get('required') else 'no'}</td><td>{_type(p.get('schema', {}))}"
            f"</td><td>{_text(p.get('description', ''))}</td></tr>"
            for p in params
        )
        parts.append(
            "<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th>"
            f"<th>type</th><th>description</th></tr>{rows}</table>"
        )
    if body := op.get("requestBody"):
        parts.append(f"<h4>Request body</h4>{_content(body.get('content', {}))}")
    rows = "".join(
        f"<tr><td>{escape(status)}</td><td>{_text(answer.get('description', ''))}"
        f"{_content(answer.get('content', {}))}{_headers(answer.get('headers', {}))}</td></tr>"
        for status, answer in op.get("responses", {}).items()
    )
    parts.append(f"<h4>Answers</h4><table><tr><th>status</th><th></th></tr>{rows}</table>")
    return "".join(parts) + "</section>"


def _content(content: dict[str, Any]) -> str:
    items = []
    for media, spec in content.items():
        if media == "application/problem+json":
            items.append(f"<li><code>{escape(media)}</code>: an RFC 9457 problem</li>")
            continue
        schema = spec.get("schema", {})
        note = schema.get("description", "") if "$ref" not in schema else ""
        items.append(
            f"<li><code>{escape(media)}</code>: {_type(schema)}"
            f"{' — ' + _text(note) if note else ''}{_properties(schema)}</li>"
        )
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _headers(headers: dict[str, Any]) -> str:
    if not headers:
        return ""
    items = "".join(
        f"<li><code>{escape(name)}</code>: {_text(h.get('description', ''))}</li>"
        for name, h in headers.items()
    )
    return f"Headers:<ul>{items}</ul>"


def _schema_section(name: str, schema: dict[str, Any]) -> str:
    return (
        f'<h3 id="schema-{escape(name)}">{escape(name)}</h3>'
        f"<p>{_text(schema.get('description', ''))}</p><p>{_type(schema)}</p>"
        f"{_properties(schema)}"
    )


def _properties(schema: dict[str, Any]) -> str:
    props = schema.get("properties")
    if not props:
        return ""
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td>{'yes' if name in required else 'no'}</td>"
        f"<td>{_type(prop)}</td><td>{_text(prop.get('description', ''))}</td></tr>"
        for name, prop in props.items()
    )
    return (
        "<table><tr><th>member</th><th>required</th><th>type</th><th>description</th></tr>"
        f"{rows}</table>"
    )


def _type(schema: dict[str, Any]) -> str:
    """A schema's type in a few words, references linked to their section."""
    if ref := schema.get("$ref"):
        name = escape(ref.rsplit("/", 1)[-1])
        return f'<a href="#schema-{name}">{name}</a>'
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            glue = " and " if key == "allOf" else " | "
            return glue.join(_type(s) for s in schema[key])
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{escape(str(v))}</code>" for v in schema["enum"])
    if "const" in schema:
        return f"<code>{escape(str(schema['const']))}</code>"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    words = " | ".join(kind) if isinstance(kind, list) else str(kind)
    if fmt := schema.get("format"):
        words += f" ({fmt})"
    return escape(words)
