"""The printable report as PDF (`Accept: application/pdf`), from the same HTML page.

WeasyPrint lays a report out in a few hundred milliseconds of CPU: never on
the event loop. A `Printer` runs at most `workers` renders at once in its own
threads and lets at most `waiting` more queue; a request beyond that is
refused (503, Retry-After) before anything is spent on it. What one render
costs is bounded by the page itself (`html.PRINTED_MAX` records a section).

No cache: every printed report carries its own id, time, recipient and
signature, so no two requests print the same bytes.

Fonts come from the system (Debian's fonts-noto-cjk, `make services`); the
page names no URL, and a fetcher that refuses every URL makes sure nothing
is ever loaded from anywhere.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from gateway.errors import DependencyUnavailable
from gateway.metrics import REPORT_PDF

RETRY_AFTER_S = 2


class PrinterBusy(DependencyUnavailable):
    type_slug, title = "printer-busy", "Too many printable reports are being rendered"


class _Tools(threading.local):
    """WeasyPrint's font configuration and URL fetcher, one each per render
    thread (neither is meant to be shared across threads), made on its first render."""

    fonts: Any = None
    fetcher: Any = None


def render_pdf(html: str, tools: _Tools | None = None) -> bytes:
    """The PDF of one printable page; blocking, a few hundred ms of CPU."""
    # Imported here: only a process that prints loads pango and its fonts.
    import weasyprint
    from weasyprint.text.fonts import FontConfiguration

    started = time.perf_counter()
    tools = tools or _Tools()
    if tools.fonts is None:
        tools.fonts = FontConfiguration()
        # No protocol allowed: not http, not file, not data.
        tools.fetcher = weasyprint.URLFetcher(allowed_protocols=frozenset())
    document = weasyprint.HTML(string=html, url_fetcher=tools.fetcher)
    pdf: bytes = document.write_pdf(font_config=tools.fonts)
    REPORT_PDF.observe(time.perf_counter() - started)
    return pdf


class Printer:
    def __init__(self, *, workers: int = 2, waiting: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xyd-pdf")
        self._tools = _Tools()
        self.limit = workers + waiting
        self.pending = 0  # touched on the event loop only

    @contextmanager
    def slot(self) -> Iterator[Printer]:
        """A place in the queue for one request, held until it has answered;
        PrinterBusy when there is none."""
        if self.pending >= self.limit:
            raise PrinterBusy(
                "too many printable reports are being rendered; retry shortly, "
                "or ask for application/json",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.pending += 1
        try:
            yield self
        finally:
            self.pending -= 1

    async def pdf(self, html: str) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, render_pdf, html, self._tools)

    def close(self) -> None:
        # A render under way finishes in its thread; queued ones are dropped.
        self._pool.shutdown(wait=False, cancel_futures=True)
