"""Which representation a report request gets, by its Accept header."""

from __future__ import annotations

import pytest

from gateway.errors import NotAcceptable
from gateway.reports.router import HTML, JOSE, JSON, PDF, negotiate


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("application/json", JSON),
        ("application/jose", JOSE),
        ("text/html", HTML),
        ("*/*", JSON),
        ("text/*", HTML),
        ("application/jose;q=0.5, text/html;q=0.9", HTML),
        ("Application/JOSE", JOSE),
        ("application/json;q=0, application/jose", JOSE),
        ("image/png, application/*;q=0.1", JSON),
        ("application/pdf", PDF),
        ("Application/PDF", PDF),
        ("text/html;q=0.5, application/pdf", PDF),
        ("application/pdf;q=0.2, text/html;q=0.8", HTML),
    ],
)
def test_chosen_by_accept_and_q_values(accept: str | None, chosen: str) -> None:
    assert negotiate(accept) == chosen


@pytest.mark.parametrize("accept", ["image/png", "application/json;q=0", "text/plain"])
def test_nothing_acceptable_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        negotiate(accept)
