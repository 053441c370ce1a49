"""The production profile's rules on the settings alone.

Each rule is a plain function of the Settings: None when the setting is safe
in production, else one message that names the setting (its XYD_ name), says
what is wrong and what to set instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from gateway.settings import Settings

Rule = Callable[[Settings], str | None]


def sqlite_store(settings: Settings) -> str | None:
    if settings.is_sqlite:
        return (
            "XYD_DATABASE_URL: the store is SQLite, one file on one host; "
            "set a postgresql+psycopg:// URL (the Patroni cluster's)"
        )
    return None


def no_redis(settings: Settings) -> str | None:
    if not settings.redis_url:
        return (
            "XYD_REDIS_URL: unset, so the rate limiter, the replay guards and the monitor's "
            "bus live in each process's memory; set the Redis URL every host shares"
        )
    return None


def sentinel_without_wait(settings: Settings) -> str | None:
    url = settings.redis_url or ""
    if url.startswith("redis+sentinel://") and settings.redis_wait_replicas < 1:
        return (
            "XYD_REDIS_WAIT_REPLICAS: 0 with Sentinel, so a count or a spent jti the master "
            "took but no replica received is lost when a replica is promoted (a client over "
            "its plan, a replayed assertion); set 1"
        )
    return None


def local_limiter_fallback(settings: Settings) -> str | None:
    if settings.rate_limit_redis_down == "local_fallback":
        return (
            "XYD_RATE_LIMIT_REDIS_DOWN: local_fallback lets each worker's in-memory limiter "
            "admit while Redis is down, so a client can exceed its plan; set fail_closed"
        )
    return None


def kek_from_state_dir(settings: Settings) -> str | None:
    if settings.key_encryption_key is None and settings.key_encryption_key_file is None:
        return (
            "XYD_KEY_ENCRYPTION_KEY_FILE: unset, so the key-encryption key would be read "
            "from (or made in) STATE_DIR/kek.key; name the file its secret is mounted as"
        )
    return None


def pii_key_from_state_dir(settings: Settings) -> str | None:
    if settings.pii_key is None and settings.pii_key_file is None:
        return (
            "XYD_PII_KEY_FILE: unset, so the personal-data HMAC key would be read from "
            "(or made in) STATE_DIR/pii.key; name the file its secret is mounted as"
        )
    return None


def pii_keys_from_state_dir(settings: Settings) -> str | None:
    if settings.pii_encryption_keys is None and settings.pii_encryption_keys_dir is None:
        return (
            "XYD_PII_ENCRYPTION_KEYS_DIR: unset, so the personal-data encryption keys would "
            "be read from (or made in) STATE_DIR/pii-keys; name the directory their secret "
            "is mounted as (VERSION.key files)"
        )
    return None


def _loopback(host: str) -> bool:
    host = host.strip().lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def loopback_outbound(settings: Settings) -> str | None:
    loopback = [h for h in settings.outbound_allowed_hosts if _loopback(h)]
    if loopback:
        return (
            f"XYD_OUTBOUND_ALLOWED_HOSTS: lists {', '.join(loopback)}, so a bank's webhook "
            "URL or the enterprise identity provider could reach services on the gateway's "
            "own host; list only the private hosts meant (JSON list, [] for none)"
        )
    return None


def client_secret_basic(settings: Settings) -> str | None:
    if settings.allow_client_secret_basic:
        return (
            "XYD_ALLOW_CLIENT_SECRET_BASIC: true accepts shared client secrets beside "
            "private_key_jwt; set false"
        )
    return None


def direct_consents(settings: Settings) -> str | None:
    if "direct" in settings.consent_channels:
        return (
            "XYD_CONSENT_CHANNELS: includes direct (a bank registering a consent on its own "
            "evidence); set portal,platform"
        )
    return None


def docs_unset(settings: Settings) -> str | None:
    if settings.public_docs is None:
        return (
            "XYD_PUBLIC_DOCS: unset, so /docs and /openapi.json would be public; set false, "
            "or true to publish the API reference on purpose"
        )
    return None


def metrics_unset(settings: Settings) -> str | None:
    if settings.public_metrics is None:
        return (
            "XYD_PUBLIC_METRICS: unset, so /metrics would be public; set false, or true "
            "when the proxy keeps it from the public and Prometheus scrapes from inside"
        )
    return None


def http_issuer(settings: Settings) -> str | None:
    if not settings.issuer.startswith("https://"):
        return (
            f"XYD_PUBLIC_BASE_URL: the issuer is {settings.issuer}, not https; set the "
            "gateway's public https:// URL (tokens and DPoP proofs name it)"
        )
    return None


def enterprise_issuer(settings: Settings) -> str | None:
    issuer = settings.enterprise_oidc_issuer
    if not issuer:
        return (
            "XYD_ENTERPRISE_OIDC_ISSUER: empty, so the enterprise login would trust the "
            "issuer in the demo provider's client file; set your provider's https:// issuer"
        )
    if not issuer.startswith("https://"):
        return (
            f"XYD_ENTERPRISE_OIDC_ISSUER: {issuer} is not https, so ID tokens and the "
            "provider's keys could be read or changed on the way; set its https:// issuer"
        )
    return None


def enterprise_client_from_demo_file(settings: Settings) -> str | None:
    named = bool(settings.enterprise_oidc_client_id) and (
        settings.enterprise_oidc_client_secret_file is not None
    )
    if settings.enterprise_oidc_client_file is None and not named:
        return (
            "XYD_ENTERPRISE_OIDC_CLIENT_FILE: unset (and no XYD_ENTERPRISE_OIDC_CLIENT_ID with "
            "XYD_ENTERPRISE_OIDC_CLIENT_SECRET_FILE), so the enterprise login would use the "
            "demo provider's STATE_DIR/demo/oidc/client.json; name your registration"
        )
    return None


RULES: tuple[Rule, ...] = (
    sqlite_store,
    no_redis,
    sentinel_without_wait,
    local_limiter_fallback,
    kek_from_state_dir,
    pii_key_from_state_dir,
    pii_keys_from_state_dir,
    loopback_outbound,
    client_secret_basic,
    direct_consents,
    docs_unset,
    metrics_unset,
    http_issuer,
    enterprise_issuer,
    enterprise_client_from_demo_file,
)


def settings_violations(settings: Settings) -> list[str]:
    """Every rule's message, in RULES's order."""
    return [message for rule in RULES if (message := rule(settings)) is not None]
