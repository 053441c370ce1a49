"""A production configuration every rule accepts, with one setting changed at a time."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from gateway.settings import Settings


def _secret_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_hex(32) + "\n")
    path.chmod(0o600)
    return path


def production_settings(tmp_path: Path, **changes: Any) -> Settings:
    """The production profile, configured as docs/settings.md says, plus `changes`."""
    secrets_dir = tmp_path / "secrets"
    _secret_file(secrets_dir / "pii-keys" / "1.key")
    values: dict[str, Any] = {
        "profile": "production",
        "state_dir": tmp_path / "state",
        "database_url": "postgresql+psycopg://xyd@db.internal/xyd",
        "redis_url": "redis://redis.internal:6379/0",
        "key_encryption_key_file": _secret_file(secrets_dir / "kek"),
        "pii_key_file": _secret_file(secrets_dir / "pii"),
        "pii_encryption_keys_dir": secrets_dir / "pii-keys",
        "outbound_allowed_hosts": ["platform.internal"],
        "consent_channels": ["portal", "platform"],
        "public_docs": False,
        "public_metrics": False,
        "public_base_url": "https://xyd.example.cn",
        "enterprise_oidc_issuer": "https://login.example.cn",
        "enterprise_oidc_client_file": secrets_dir / "oidc-client.json",
    }
    values.update(changes)
    return Settings(**values)
