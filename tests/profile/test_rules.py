"""Each production rule refuses its unsafe setting with a message naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from gateway.profile.rules import RULES, settings_violations
from gateway.settings import Settings
from tests.profile.builders import production_settings

OUTBOUND = "XYD_OUTBOUND_ALLOWED_HOSTS"
ENTERPRISE_ISSUER = "XYD_ENTERPRISE_OIDC_ISSUER"
# (the change, the setting its refusal names, what the message says)
UNSAFE: list[tuple[dict[str, Any], str, str]] = [
    ({"database_url": ""}, "XYD_DATABASE_URL", "SQLite"),
    ({"database_url": "sqlite:////srv/xyd.db"}, "XYD_DATABASE_URL", "SQLite"),
    ({"redis_url": None}, "XYD_REDIS_URL", "memory"),
    (
        {"redis_url": "redis+sentinel://r1.internal:26379,r2.internal:26379/xyd"},
        "XYD_REDIS_WAIT_REPLICAS",
        "replayed assertion",
    ),
    ({"rate_limit_redis_down": "local_fallback"}, "XYD_RATE_LIMIT_REDIS_DOWN", "fail_closed"),
    ({"key_encryption_key_file": None}, "XYD_KEY_ENCRYPTION_KEY_FILE", "kek.key"),
    ({"pii_key_file": None}, "XYD_PII_KEY_FILE", "pii.key"),
    ({"pii_encryption_keys_dir": None}, "XYD_PII_ENCRYPTION_KEYS_DIR", "pii-keys"),
    (
        {"outbound_allowed_hosts": ["localhost", "127.0.0.1", "::1"]},
        OUTBOUND,
        "localhost, 127.0.0.1, ::1",
    ),
    ({"outbound_allowed_hosts": ["ok.internal", "127.0.0.2"]}, OUTBOUND, "127.0.0.2"),
    ({"outbound_allowed_hosts": ["[::ffff:127.0.0.1]"]}, OUTBOUND, "::ffff"),
    ({"outbound_allowed_hosts": ["api.localhost"]}, OUTBOUND, "api.localhost"),
    ({"allow_client_secret_basic": True}, "XYD_ALLOW_CLIENT_SECRET_BASIC", "private_key_jwt"),
    ({"consent_channels": ["portal", "direct"]}, "XYD_CONSENT_CHANNELS", "portal,platform"),
    ({"public_docs": None}, "XYD_PUBLIC_DOCS", "/openapi.json"),
    ({"public_metrics": None}, "XYD_PUBLIC_METRICS", "/metrics"),
    ({"public_base_url": ""}, "XYD_PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
    ({"public_base_url": "http://xyd.example.cn"}, "XYD_PUBLIC_BASE_URL", "not https"),
    ({"enterprise_oidc_issuer": "http://login.example.cn"}, ENTERPRISE_ISSUER, "not https"),
    ({"enterprise_oidc_issuer": ""}, ENTERPRISE_ISSUER, "demo provider"),
    ({"enterprise_oidc_client_file": None}, "XYD_ENTERPRISE_OIDC_CLIENT_FILE", "client.json"),
]


@pytest.mark.parametrize(
    ("change", "setting", "says"), UNSAFE, ids=[f"{s}-{i}" for i, (_, s, _) in enumerate(UNSAFE)]
)
def test_each_unsafe_setting_is_refused_naming_it(
    tmp_path: Path, change: dict[str, Any], setting: str, says: str
) -> None:
    found = settings_violations(production_settings(tmp_path, **change))
    assert len(found) == 1, found
    assert found[0].startswith(f"{setting}: "), found[0]
    assert says in found[0]


def test_every_rule_has_a_case_above(tmp_path: Path) -> None:
    refused = set()
    for change, _, _ in UNSAFE:
        unsafe = production_settings(tmp_path, **change)
        refused.update(rule.__name__ for rule in RULES if rule(unsafe) is not None)
    assert refused == {rule.__name__ for rule in RULES}


def test_a_fully_configured_production_passes(tmp_path: Path) -> None:
    assert settings_violations(production_settings(tmp_path)) == []


def test_keys_given_as_values_count_as_explicit(tmp_path: Path) -> None:
    values = production_settings(
        tmp_path,
        key_encryption_key_file=None,
        key_encryption_key=SecretStr("00" * 32),
        pii_key_file=None,
        pii_key=SecretStr("a-key"),
        pii_encryption_keys_dir=None,
        pii_encryption_keys=SecretStr("1:" + "11" * 32),
    )
    assert settings_violations(values) == []


def test_a_client_id_with_a_secret_file_names_the_enterprise_client(tmp_path: Path) -> None:
    named = production_settings(
        tmp_path,
        enterprise_oidc_client_file=None,
        enterprise_oidc_client_id="xyd-gateway",
        enterprise_oidc_client_secret_file=tmp_path / "oidc-secret",
    )
    assert settings_violations(named) == []


def test_the_demo_defaults_break_every_other_rule(tmp_path: Path) -> None:
    demo = Settings(profile="production", state_dir=tmp_path)
    refused = {rule.__name__ for rule in RULES if rule(demo) is not None}
    # Fail-closed limiting and private_key_jwt alone are already the defaults;
    # without Redis there is no Sentinel to wait on.
    safe_already = {"local_limiter_fallback", "client_secret_basic", "sentinel_without_wait"}
    assert refused == {rule.__name__ for rule in RULES} - safe_already
