"""docs/settings.md is what .ci/settings_table.py makes from the Settings model and
config/xyd.production.env.example, and that example passes the production profile."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from gateway.profile.rules import settings_violations
from gateway.settings import Settings

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "settings_table.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_settings_page_is_up_to_date() -> None:
    table = load()
    assert table.PAGE.read_text(encoding="utf-8") == table.render(), (
        "docs/settings.md is stale: python .ci/settings_table.py --write"
    )


def test_every_setting_is_described() -> None:
    assert [n for n, f in Settings.model_fields.items() if not f.description] == []


def test_the_example_names_only_real_settings() -> None:
    table = load()
    known = {f"XYD_{name.upper()}" for name in Settings.model_fields}
    assert set(table.production_values(table.EXAMPLE.read_text())) <= known


def test_the_production_example_passes_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    table = load()
    for name, (value, _) in table.production_values(table.EXAMPLE.read_text()).items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.profile == "production"
    assert settings_violations(settings) == []
