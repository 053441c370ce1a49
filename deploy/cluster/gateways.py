"""The gateway hosts, the monitor host and what they share: one key-encryption key,
one personal-data key and key ring (files under secrets/, as mounted secrets would
be), a copy of config/ with limits wide enough for the tests' loads, and the URLs
of the HA engines."""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from deploy.cluster.engines import GATEWAY_PORT, MASTER_NAME, Service
from deploy.image import rootfs
from deploy.image.export import ImageConfig

REPO = Path(__file__).resolve().parents[2]
XYD = REPO / ".venv" / "bin" / "xyd"
ISSUER = "https://xyd.cluster.test"
QUOTA_CLIENT, TINY_PLAN = "bank-quota", 40


@dataclass(frozen=True)
class Overrides:
    """What one cluster runs beyond the defaults, when a test asks for it: settings
    for every gateway host and the monitor (XYD_ names), and config/platforms.yaml
    blocks that replace the switched-off ones."""

    env: dict[str, str] = field(default_factory=dict)
    platforms: dict[str, dict[str, object]] = field(default_factory=dict)
    # Files put in every gateway host's state directory (0600, its user's), for
    # settings naming files relative to it: a platform's credentials, say. Each
    # host reads its own copy, the image's host included.
    state_files: dict[str, bytes] = field(default_factory=dict)


def database_url(password: str, pg_addresses: list[str]) -> str:
    """Every PostgreSQL host; libpq tries them in turn and keeps the writable one."""
    hosts = "&".join(f"host={address}:5432" for address in pg_addresses)
    return f"postgresql+psycopg://xyd:{password}@/xyd?{hosts}&target_session_attrs=read-write"


def redis_url(redis_addresses: list[str]) -> str:
    """The gateways ask the sentinels for the master (gateway/redisconn.py)."""
    return f"redis+sentinel://{','.join(f'{a}:26379' for a in redis_addresses)}/{MASTER_NAME}"


def make_shared(root: Path, switched_on: dict[str, dict[str, object]] | None = None) -> Path:
    """secrets/: the KEK, the PII HMAC key and key ring every gateway host reads;
    config/: the repository's, for the cluster (platforms `switched_on` by a test)."""
    keys = root / "secrets"
    (keys / "pii-keys").mkdir(parents=True, exist_ok=True)
    keys.chmod(0o700)
    for path in (keys / "kek.key", keys / "pii.key", keys / "pii-keys" / "1.key"):
        path.write_text(secrets.token_hex(32) + "\n")
        path.chmod(0o600)
    (keys / "oidc.secret").write_text(secrets.token_urlsafe(24) + "\n")
    (keys / "oidc.secret").chmod(0o600)
    config = root / "config"
    shutil.copytree(REPO / "config", config, dirs_exist_ok=True)
    rates = yaml.safe_load((config / "rates.yaml").read_text())
    # One test client reads one enterprise's report hundreds of times in seconds.
    rates["plans"]["standard"].update(rate_per_s=2000, burst=4000, reports_per_day=1_000_000)
    rates["enterprise_reports_per_day"] = 1_000_000
    rates["enterprise_reports_per_bank_per_day"] = 1_000_000
    # One client on a small daily plan, for the tests that drive a client past it.
    rates["plans"]["tiny"] = {"rate_per_s": 2000, "burst": 4000, "reports_per_day": TINY_PLAN}
    rates["clients"] = {**(rates.get("clients") or {}), QUOTA_CLIENT: "tiny"}
    (config / "rates.yaml").write_text(yaml.safe_dump(rates, sort_keys=False))
    # No platform has credentials here: each is switched off rather than left
    # answering "retry later" and pulling in vain.
    platforms = yaml.safe_load((config / "platforms.yaml").read_text())
    for block in platforms.values():
        block["enabled"] = False
    platforms.update(switched_on or {})
    (config / "platforms.yaml").write_text(yaml.safe_dump(platforms, sort_keys=False))
    return keys


def gateway_env(
    root: Path, host: str, db_url: str, cache_url: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The production profile's settings, each pointing at the cluster's own, then
    `extra` (a test's Overrides.env)."""
    keys = root / "secrets"
    return {
        "XYD_PROFILE": "production",
        "XYD_STATE_DIR": str(root / host / "state"),
        "XYD_CONFIG_DIR": str(root / "config"),
        "XYD_DATABASE_URL": db_url,
        "XYD_REDIS_URL": cache_url,
        "XYD_KEY_ENCRYPTION_KEY_FILE": str(keys / "kek.key"),
        "XYD_PII_KEY_FILE": str(keys / "pii.key"),
        "XYD_PII_ENCRYPTION_KEYS_DIR": str(keys / "pii-keys"),
        "XYD_PUBLIC_BASE_URL": ISSUER,
        "XYD_PUBLIC_DOCS": "false",
        "XYD_PUBLIC_METRICS": "false",
        "XYD_OUTBOUND_ALLOWED_HOSTS": "[]",
        "XYD_CONSENT_CHANNELS": "portal,platform",
        "XYD_ENTERPRISE_OIDC_ISSUER": "https://idp.cluster.test",
        "XYD_ENTERPRISE_OIDC_CLIENT_ID": "xyd",
        "XYD_ENTERPRISE_OIDC_CLIENT_SECRET_FILE": str(keys / "oidc.secret"),
        "XYD_RUN_EMBEDDED_MONITOR": "false",
        # Counts and spent jtis on two Redis hosts before an answer: a failover
        # to the replica that has read furthest keeps them (policies/rate_redis.py).
        "XYD_REDIS_WAIT_REPLICAS": "1",
        # The tests' bank signs with the key made at start-up, at once.
        "XYD_KEY_ACTIVATION_DELAY_S": "0",
        # Each worker's head signed and in its host's witness within a second of
        # its last write, so a backup taken after the traffic holds every checkpoint.
        "XYD_AUDIT_SEAL_S": "1",
        "XYD_LOG_LEVEL": "INFO",
        # The hosts share the machine's hostname (a network namespace has no UTS
        # of its own): each names itself in the leases table (gw1:PID:RANDOM).
        "XYD_LEASE_HOLDER": host,
        "PATH": "/usr/bin:/bin",
        **(extra or {}),
    }


def _serve(address: str) -> list[str]:
    return ["serve", "--host", address, "--port", str(GATEWAY_PORT), "--workers", "2"]


def gateway_service(host: str, address: str, env: dict[str, str]) -> Service:
    return Service(host, host, [str(XYD), *_serve(address)], env={**env, "XYD_WORKERS": "2"})


# Where the image's gateway finds what the host gives it, as a pod's volumes would.
IMAGE_CONFIG = "/run/xyd/config"
IMAGE_SECRETS = "/run/xyd/secrets"


def image_gateway_service(
    root: Path, host: str, address: str, env: dict[str, str], image: Path
) -> Service:
    """The gateway of the image exported to `image`, run from its root filesystem
    (read-only, uid 10001; deploy/image/rootfs.py): its state directory is
    ROOT/HOST/state, owned by 10001; config/ and its own copy of secrets/ are
    bound read-only, the copy owned by 10001 as a Secret volume with the pod's
    fsGroup would be (the shared files are root's alone, 0600)."""
    uid = int(ImageConfig.load(image).user.partition(":")[0])
    state = root / host / "state"
    state.mkdir(parents=True, exist_ok=True)
    os.chown(state, uid, uid)
    state.chmod(0o700)
    keys = root / host / "secrets"
    shutil.rmtree(keys, ignore_errors=True)
    shutil.copytree(root / "secrets", keys)
    for path in [keys, *keys.rglob("*")]:
        os.chown(path, uid, uid)
        path.chmod(0o500 if path.is_dir() else 0o400)
    moved = {
        str(state): rootfs.STATE_DIR,
        str(root / "config"): IMAGE_CONFIG,
        str(root / "secrets"): IMAGE_SECRETS,
    }
    settings = {name: _relocated(value, moved) for name, value in env.items() if name != "PATH"}
    argv = rootfs.command(
        image,
        state=state,
        args=_serve(address),
        binds={root / "config": IMAGE_CONFIG, keys: IMAGE_SECRETS},
    )
    env = rootfs.environment(image, {**settings, "XYD_WORKERS": "2"})
    return Service(host, host, argv, env=env)


def _relocated(value: str, moved: dict[str, str]) -> str:
    """`value` with a host path under one of `moved`'s keys as the path inside."""
    for outside, inside in moved.items():
        if value == outside or value.startswith(outside + "/"):
            return inside + value[len(outside) :]
    return value


def monitor_service(env: dict[str, str]) -> Service:
    return Service("mon", "mon", [str(XYD), "monitor", "--consumer", "mon"], env=env)
