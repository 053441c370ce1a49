"""The one settings object. Every knob is an `XYD_` environment variable.

Defaults are the embedded mode: a SQLite file under `.xyd/`, the in-process
limiter, no Redis. Production sets `XYD_DATABASE_URL` to PostgreSQL and
`XYD_REDIS_URL` (which also moves the rate limiter into Redis).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.private_files import private_dir
from policies.consent import CHANNEL_KINDS, ChannelKind


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XYD_", extra="ignore")

    # --- the profile -----------------------------------------------------------
    profile: Literal["demo", "production"] = Field(
        "demo",
        description=(
            "`production` refuses to start (`xyd serve`, the app, `xyd check-config`) while any "
            "setting is unsafe there, listing every one (gateway/profile/); `demo` allows the "
            "embedded defaults"
        ),
    )

    # --- where state lives -------------------------------------------------
    state_dir: Path = Field(Path(".xyd"), description="Generated keys, SQLite file, demo output")
    config_dir: Path = Field(
        Path(__file__).resolve().parent.parent / "config",
        description="Rate plans, consent rules, scoring model, risk rules",
    )
    database_url: str = Field(
        "",
        description=(
            "SQLAlchemy URL; empty means SQLite at STATE_DIR/xyd.db. PostgreSQL: "
            "`postgresql+psycopg://USER:PW@HOST:5432/DB`, or several servers, the writable "
            "one chosen: `postgresql+psycopg://USER:PW@/DB?host=H1:5432&host=H2:5432"
            "&target_session_attrs=read-write`"
        ),
    )
    redis_url: str | None = Field(
        None,
        description=(
            "Redis URL; unset means embedded mode. One server: `redis://HOST:6379/0`, "
            "`rediss://…`, `unix://PATH`; under Sentinel: "
            "`redis+sentinel://[:PASSWORD@]HOST:26379,HOST:26379,HOST:26379/MASTER_NAME[/DB]` "
            "(sentinel addresses, then the master's name; the password is the master's)"
        ),
    )
    db_pool_size: int = Field(
        10, ge=1, le=200, description="PostgreSQL connections each engine of a process keeps"
    )

    # --- HTTP ---------------------------------------------------------------
    host: str = Field("127.0.0.1", description="The address `xyd serve` listens on")
    port: int = Field(8000, ge=1, le=65535, description="The port `xyd serve` listens on")
    workers: int = Field(
        1, ge=1, le=64, description="Worker processes `xyd serve` runs; more than one needs Redis"
    )
    max_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Larger request bodies are refused with 413"
    )
    public_base_url: str = Field("", description="Issuer base URL; empty means http://HOST:PORT")
    # Slow and idle clients (a worker's descriptors are finite): each bound is per worker.
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A connection whose request head is not complete this long after it "
        "opened (or after the previous answer) is closed",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="A request body not received in full this long after the request "
        "started is answered 408 and the connection closed",
    )
    max_connections: int = Field(
        2048,
        ge=8,
        le=1_000_000,
        description="Open connections a worker keeps: a new one beyond it closes the "
        "longest-idle one, or is itself closed when none is idle",
    )
    max_concurrency: int = Field(
        512,
        ge=1,
        le=100_000,
        description="Requests a worker handles at once (streams included); more are "
        "answered 503 with Retry-After",
    )

    # --- operations ----------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="The least severe log line written"
    )
    rate_limit_redis_down: Literal["fail_closed", "local_fallback"] = Field(
        "fail_closed",
        description="Redis unreachable: refuse with 503, or let each worker enforce its share",
    )
    breaker_failures: int = Field(3, ge=1, le=100, description="Redis failures that open it")
    breaker_open_s: float = Field(5.0, gt=0, le=300, description="How long it stays open")
    redis_timeout_s: float = Field(
        0.25, gt=0, le=10, description="A Redis command's time before it counts as a failure"
    )
    redis_wait_replicas: int = Field(
        0,
        ge=0,
        le=10,
        description="Redis replicas that must acknowledge the gate's counts and spent jtis "
        "(`WAIT`, within half of XYD_REDIS_TIMEOUT_S) before a request is admitted, so a "
        "Sentinel failover loses none of them; too few in time: refused with 503. "
        "0: no wait (one Redis server)",
    )
    readiness_timeout_s: float = Field(
        1.0, gt=0, le=30, description="Each of /readyz's checks (database, Redis) at most this long"
    )
    public_docs: bool | None = Field(
        None,
        description=(
            "Serve the API reference (/docs, /openapi.json); unset: served by the demo, "
            "and the production profile refuses to start until it is set either way"
        ),
    )
    public_metrics: bool | None = Field(
        None,
        description=(
            "Serve Prometheus's /metrics; unset: served by the demo, and the production "
            "profile refuses to start until it is set either way (true: keep it from the "
            "public at the proxy, scraped from inside)"
        ),
    )

    # --- personal data ----------------------------------------------------
    pii_key: SecretStr | None = Field(
        None,
        description="HMAC key for personal identifiers; unset means XYD_PII_KEY_FILE, "
        "else STATE_DIR/pii.key (made on first use)",
    )
    pii_key_file: Path | None = Field(
        None, description="A file holding the HMAC key for personal identifiers, hex (a secret)"
    )
    pii_encryption_keys: SecretStr | None = Field(
        None,
        description="AES-256 keys for personal fields kept for lawful recovery, "
        "'VERSION:64HEX,…'; unset means XYD_PII_ENCRYPTION_KEYS_DIR, else "
        "STATE_DIR/pii-keys/VERSION.key (made on first use)",
    )
    pii_encryption_keys_dir: Path | None = Field(
        None,
        description="A directory of those keys, one VERSION.key file (hex) each, as a "
        "secret is mounted; nothing is created there",
    )
    pii_encryption_active: int | None = Field(
        None, ge=1, description="Key version that encrypts new values; unset means the highest"
    )

    # --- ingestion ---------------------------------------------------------
    ingest_batch_size: int = Field(
        1000, ge=1, le=50_000, description="Record lines written to the store per transaction"
    )
    max_records_per_request: int = Field(
        10_000, ge=1, le=1_000_000,
        description="Lines one POST /v1/records may carry (413 beyond); files go to `xyd ingest`",
    )  # fmt: skip

    # --- online credit repair (信用修复) --------------------------------------
    repair_evidence_max_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024,
        description="One evidence file (PDF, JPEG or PNG) at most this size, decoded",
    )  # fmt: skip
    repair_evidence_max_files: int = Field(
        5, ge=1, le=20, description="Evidence files one application may carry"
    )
    repair_evidence_max_total_bytes: int = Field(
        7 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024,
        description="All of one application's evidence together, decoded; POST /v1/repairs "
        "carries it base64 in JSON, so its body is bounded at 4/3 of this plus 64 KiB "
        "(and XYD_MAX_BODY_BYTES still applies)",
    )  # fmt: skip
    repair_review_days: int = Field(
        7, ge=1, le=90,
        description="Days a department has to decide an application; past them the risk "
        "officers' dashboard flags it (the 2023 rules' 5 working days)",
    )  # fmt: skip

    # --- platforms -----------------------------------------------------------
    run_background: bool = Field(
        True,
        description="Take part in the once-only work (pull schedules, the outbox, the sweeps, "
        "the audit export): this process runs each whose lease it holds",
    )
    outbound_allowed_hosts: list[str] = Field(
        ["localhost", "127.0.0.1", "::1"],
        description=(
            "Hosts platform calls may reach although they are (or resolve to) loopback, "
            "private or link-local addresses; public ones need no entry. The default "
            "fits the embedded demo's simulators; production lists its own (JSON list)"
        ),
    )
    lease_ttl_s: float = Field(
        15.0, ge=1, le=600,
        description="Seconds a host holds a once-only job's lease (a pull schedule, the outbox, "
        "the sweeps, the audit export) without renewing it; another host takes the job over "
        "within this of the holder's death",
    )  # fmt: skip
    lease_holder: str | None = Field(
        None, min_length=1, max_length=200,
        description="This host's name in the leases table: each process holds as it, its pid "
        "and a random suffix, so two workers never share a holder; none: the hostname (name "
        "hosts that share one, as network namespaces do)",
    )  # fmt: skip
    outbox_poll_s: float = Field(2.0, gt=0, le=3600, description="How often the outbox is read")
    webhook_sweep_s: float = Field(
        15.0, gt=0, le=3600,
        description="How often expired consents and monitored enterprises' new data are swept "
        "for banks' webhooks (consent.expired, enterprise.changed)",
    )  # fmt: skip
    webhook_sweep_batch: int = Field(
        200, ge=1, le=10_000, description="At most this many consents per sweep and round"
    )
    run_embedded_monitor: bool = Field(
        True, description="Without Redis, run the risk monitor inside the gateway process"
    )
    monitor_claim_idle_ms: int = Field(
        30_000, ge=100, le=3_600_000,
        description="A monitor worker takes over events another left pending this long",
    )  # fmt: skip
    monitor_max_deliveries: int = Field(
        5, ge=1, le=1000,
        description=(
            "An event that failed this many deliveries (claim_idle_ms apart) is "
            "dead-lettered, counted and listed on the dashboard, not retried forever"
        ),
    )  # fmt: skip

    # --- consents ------------------------------------------------------------
    consent_channels: Annotated[list[ChannelKind], NoDecode] = Field(
        list(CHANNEL_KINDS),
        min_length=1,
        description=(
            "The channels consents are accepted through, a comma list of `portal` (granted "
            "by the enterprise in the authorisation-code flow), `platform` (signed on a "
            "financing platform) and `direct` (a bank's POST /v1/consents with document "
            "evidence). The demo accepts all three; production `portal,platform`, where a "
            "direct registration is a 403 and a platform's authorisation through a refused "
            "channel is refused in its protocol and dead-lettered"
        ),
    )

    @field_validator("consent_channels", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    # --- reports -------------------------------------------------------------
    report_cache_entries: int = Field(
        2048, ge=0, le=1_000_000, description="Built reports each process keeps in memory"
    )
    consent_copy_s: float = Field(
        1.0, ge=0, le=5,
        description=(
            "With Redis, how long a process decides report requests from its copy of a consent "
            "and data version instead of reading them per request. Revocation still takes effect "
            "at once (a change mark checked in the gate's round trip); a data change can take "
            "this long to show. 0: read both on every request"
        ),
    )  # fmt: skip
    report_feeds_refresh_s: float = Field(
        60.0, ge=0, le=3600,
        description=(
            "How often a process re-reads when each category's last complete feed arrived "
            "(a report's completeness); feed freshness moves by days. 0: on every report built"
        ),
    )  # fmt: skip

    report_retention_days: int = Field(
        1825, ge=1, le=3660,
        description=(
            "How long an issued report can be fetched again by its recipient "
            "(GET /v1/reports/{id}); `xyd audit purge-reports` deletes older ones. Five "
            "years: how long PRC credit reporting rules keep adverse information "
            "(征信业管理条例 art. 16), so a report stays producible in a dispute as long as "
            "what it shows may be; a bank's own file rule may set another"
        ),
    )  # fmt: skip
    report_pdf_workers: int = Field(
        2, ge=1, le=16,
        description="PDF renders a process runs at once, in threads of their own (CPU-bound)",
    )  # fmt: skip
    report_pdf_waiting: int = Field(
        8, ge=0, le=1000,
        description="PDF requests a process lets wait for a renderer; beyond that 503",
    )  # fmt: skip

    # --- audit trail ---------------------------------------------------------
    audit_checkpoint_every: int = Field(
        100, ge=2, le=1_000_000,
        description=(
            "A signed checkpoint every this many entries; `xyd audit verify` wants one at "
            "every multiple up to the head (only the last may be missing, after a crash)"
        ),
    )  # fmt: skip
    audit_seal_s: float = Field(
        5.0, gt=0, le=3600,
        description="How often the head is signed and checkpoints are exported to the witness",
    )  # fmt: skip
    audit_witness: str = Field(
        "",
        description=(
            "Where signed checkpoints are exported as they are made: a file (append-only, "
            "hash-chained, 0600; put it where the store's owner cannot write), or an "
            "https:// URL that takes each one as a POST; empty means STATE_DIR/audit-witness.jsonl"
        ),
    )  # fmt: skip
    audit_jwks: Path | None = Field(
        None,
        description=(
            "A JWKS file of the public keys `xyd audit verify` trusts for checkpoints; "
            "unset means STATE_DIR/audit-keys.jwks, pinned by the gateway"
        ),
    )  # fmt: skip

    # --- the dashboard's login (throttled before any password is hashed) ----
    login_source_per_min: float = Field(
        10, gt=0, le=60_000, description="Login attempts a minute from one address, sustained"
    )
    login_source_burst: int = Field(10, ge=1, le=10_000, description="...and in one burst")
    login_account_tries: int = Field(
        5, ge=1, le=100,
        description="Attempts at one user name from one address before it waits; a right "
        "password gives them all back",
    )  # fmt: skip
    login_account_window_s: int = Field(
        900, ge=1, le=86_400, description="The time in which those tries come back, all of them"
    )
    login_overall_per_s: float = Field(
        5, gt=0, le=10_000,
        description="Login attempts a second from everywhere, sustained: each costs one scrypt "
        "(about 50 ms of a core)",
    )  # fmt: skip
    login_overall_burst: int = Field(20, ge=1, le=100_000, description="...and in one burst")
    login_known_days: int = Field(
        30, ge=0, le=365,
        description="A (name, address) that logged in within this many days skips the overall "
        "limit, so a flood cannot lock an officer out of where they work from",
    )  # fmt: skip
    login_hash_threads: int = Field(
        2, ge=1, le=64, description="Passwords hashed at once per process, in threads; more wait"
    )

    # --- the enterprise login (OpenID Connect relying party) and the portal ---
    enterprise_oidc_issuer: str = Field(
        "",
        description=(
            "The enterprises' OpenID Connect provider; its discovery document is read from "
            "ISSUER/.well-known/openid-configuration. Empty means the `issuer` in the client "
            "file (the demo provider writes it once it listens)"
        ),
    )  # fmt: skip
    enterprise_oidc_client_id: str = Field(
        "", max_length=255, description="The gateway's client id there; empty: the client file's"
    )
    enterprise_oidc_client_secret_file: Path | None = Field(
        None,
        description="A file holding the client secret (one line, owner-only); unset: the "
        "client file's `client_secret`",
    )  # fmt: skip
    enterprise_oidc_client_file: Path | None = Field(
        None,
        description=(
            "A JSON registration (`client_id`, `client_secret`, `issuer`) for what the three "
            "settings above leave empty; unset means STATE_DIR/demo/oidc/client.json, which "
            "`xyd demo oidc` writes. Read when a login starts, so a provider started beside "
            "the gateway is found without a restart"
        ),
    )  # fmt: skip
    enterprise_oidc_algs: list[Literal["ES256", "EdDSA", "PS256"]] = Field(
        ["ES256"], min_length=1, description="ID token signature algorithms accepted (JSON list)"
    )
    enterprise_credit_code_claim: str = Field(
        "credit_code", max_length=100,
        description="The ID token claim naming the person's enterprise (its credit code)",
    )  # fmt: skip
    enterprise_role_claim: str = Field(
        "xyd_role", max_length=100,
        description="The ID token claim naming their role there: legal_representative or agent",
    )  # fmt: skip
    portal_login_ttl_s: int = Field(
        600, ge=60, le=3600, description="How long a started login may take to come back"
    )
    portal_idle_timeout_s: int = Field(
        1800, ge=60, le=86_400, description="A portal session unused this long ends"
    )
    portal_absolute_timeout_s: int = Field(
        8 * 3600, ge=300, le=7 * 86_400, description="A portal session ends this long after login"
    )

    # --- identity (OAuth 2.0 authorisation server) ------------------------
    key_encryption_key: SecretStr | None = Field(
        None,
        description="32-byte hex AES key for private keys; unset means "
        "XYD_KEY_ENCRYPTION_KEY_FILE, else STATE_DIR/kek.key (made on first use)",
    )
    key_encryption_key_file: Path | None = Field(
        None, description="A file holding the key-encryption key, 64 hex characters (a secret)"
    )
    access_token_ttl_s: int = Field(600, ge=30, le=900, description="Never over 15 minutes")
    par_expires_in_s: int = Field(
        90, ge=10, le=600,
        description="How long a pushed authorisation request (its request_uri) lives",
    )  # fmt: skip
    authorization_code_ttl_s: int = Field(
        60, ge=10, le=600, description="How long an authorisation code may wait to be exchanged"
    )
    oauth_spent_retention_s: int = Field(
        30 * 86_400, ge=3600, le=400 * 86_400,
        description=(
            "How long a redeemed authorisation code and an ended refresh-token family are "
            "kept after nothing they issued can be revoked any more (gateway/grants/purge.py)"
        ),
    )  # fmt: skip
    oauth_purge_s: float = Field(
        300.0, gt=0, le=86_400, description="How often spent codes, requests and tokens are purged"
    )
    oauth_purge_batch: int = Field(
        1000, ge=1, le=100_000, description="At most this many rows per table and purge round"
    )
    access_token_alg: Literal["ES256", "EdDSA"] = Field(
        "ES256", description="The algorithm access tokens are signed with"
    )
    key_activation_delay_s: int = Field(
        120, ge=0, le=86_400, description="A rotated-in key signs only after this delay"
    )
    key_refresh_s: float = Field(30, gt=0, le=3600, description="How often keys are re-read")
    clock_leeway_s: int = Field(
        30, ge=0, le=60, description="Clock difference allowed when checking exp, iat and nbf"
    )
    assertion_max_lifetime_s: int = Field(
        300, ge=10, le=300, description="The longest a client assertion may be signed to live"
    )
    fapi2_strict: bool = Field(False, description="FAPI 2.0 strict mode for every client")
    allow_client_secret_basic: bool = Field(
        False, description="Accept client_secret_basic beside private_key_jwt (never for FAPI)"
    )
    token_cache_size: int = Field(
        50_000, ge=0, le=1_000_000, description="Verified access tokens each process remembers"
    )

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'xyd.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def pii_key_bytes(self) -> bytes:
        """The personal-data HMAC key, generated under the state dir on first use."""
        if self.pii_key is not None:
            return self.pii_key.get_secret_value().encode()
        if self.pii_key_file is not None:
            return read_secret("XYD_PII_KEY_FILE", self.pii_key_file)
        return load_or_create_secret(self.state_dir / "pii.key")

    def kek_bytes(self) -> bytes:
        """The key-encryption key for signing keys, generated on first use."""
        if self.key_encryption_key is not None:
            key = bytes.fromhex(self.key_encryption_key.get_secret_value())
        elif self.key_encryption_key_file is not None:
            key = read_secret("XYD_KEY_ENCRYPTION_KEY_FILE", self.key_encryption_key_file)
        else:
            key = load_or_create_secret(self.state_dir / "kek.key")
        if len(key) != 32:
            raise ValueError("the key-encryption key must be 32 bytes (64 hex characters)")
        return key

    @property
    def audit_witness_target(self) -> str:
        """The witness: a URL, or a file path (STATE_DIR/audit-witness.jsonl by default)."""
        return self.audit_witness or str(self.state_dir / "audit-witness.jsonl")

    @property
    def issuer(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def enterprise_oidc_client_path(self) -> Path:
        return self.enterprise_oidc_client_file or self.state_dir / "demo" / "oidc" / "client.json"

    @property
    def token_audience(self) -> str:
        return f"{self.issuer}/v1"


def read_secret(setting: str, path: Path) -> bytes:
    """A hex secret from a file an operator provides (never created here)."""
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except OSError as exc:
        raise ValueError(f"{setting}: {path} cannot be read ({exc.strerror})") from None
    except ValueError:
        raise ValueError(f"{setting}: {path} does not hold a hex key") from None


def load_or_create_secret(path: Path, nbytes: int = 32) -> bytes:
    """Read a hex secret from `path`, creating it (mode 0600) when absent."""
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    private_dir(path.parent)
    value = secrets.token_bytes(nbytes)
    # O_EXCL: two processes starting at once must not each write a different key;
    # 0600 from creation, so it is never readable by others, not even briefly.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(fd, 0o600)
        handle.write(value.hex())
    return value
