from __future__ import annotations

from pathlib import Path

import pytest

from policies.consent import ConsentRules
from policies.rate import RateConfig

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_a_good_file_is_built_by_its_model() -> None:
    assert ConsentRules.load(CONFIG / "consent.yaml").purposes


@pytest.mark.parametrize(
    "content",
    [None, "plans: [unclosed\n", "plans: {}\nunknown: 1\n"],
    ids=["missing", "malformed", "invalid"],
)
def test_a_bad_file_stops_start_up_naming_the_file(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "rates.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=f"^{path}: "):
        RateConfig.load(path)
