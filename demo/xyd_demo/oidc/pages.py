"""The demo provider's two pages: the login form and the error page. Plain HTML,
no script and no remote assets; every value escaped."""

from __future__ import annotations

from html import escape

_HEAD = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{title}</title></head>
<body>
"""
_TAIL = "</body>\n</html>\n"


def login_page(request_id: str, csrf: str, client_id: str, error: str | None) -> str:
    """The login form for one authorisation request (`request_id`), posted back
    to /authorize with its CSRF token."""
    notice = f'<p role="alert">{escape(error)}</p>\n' if error else ""
    return (
        _HEAD.format(title="企业登录 · Enterprise login")
        + f"""<main>
<h1>企业登录 · Enterprise login</h1>
<p>{escape(client_id)} 请求确认您的身份 · asks who you are.</p>
{notice}<form method="post" action="/authorize">
<input type="hidden" name="request" value="{escape(request_id)}">
<input type="hidden" name="csrf" value="{escape(csrf)}">
<p><label for="username">用户名 · Username</label><br>
<input id="username" name="username" autocomplete="username" required maxlength="64"></p>
<p><label for="password">密码 · Password</label><br>
<input id="password" name="password" type="password" autocomplete="current-password"
 required maxlength="1024"></p>
<p><button type="submit">登录 · Log in</button></p>
</form>
<p>演示身份提供方 · the demo identity provider</p>
</main>
"""
        + _TAIL
    )


def error_page(title: str, detail: str) -> str:
    return (
        _HEAD.format(title=escape(title))
        + f"<main>\n<h1>{escape(title)}</h1>\n<p>{escape(detail)}</p>\n</main>\n"
        + _TAIL
    )
