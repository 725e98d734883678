"""Configuration from the environment (EVENTRELAY_*). Embedded defaults need none."""

from __future__ import annotations

from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Network = IPv4Network | IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 127.0.0.1, ::1` -> networks; raises ValueError naming the bad entry."""
    networks: list[Network] = []
    for part in spec.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR block: {entry!r}") from None
    return tuple(networks)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVENTRELAY_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".eventrelay"),
        description="Directory for the embedded SQLite database, queue and key file.",
    )
    database_url: str | None = Field(
        default=None,
        description="postgresql://... selects PostgreSQL; default is <data_dir>/eventrelay.db.",
    )
    queue_url: str | None = Field(
        default=None,
        description="nats://host:4222 selects NATS JetStream; default is <data_dir>/queue.db.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Comma-separated Fernet keys, newest first. Default: the key file.",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="Key file (one key a line, newest first), read again when it changes: "
        "mount the same file in every scale-out process. Default: <data_dir>/secret.key, "
        "created on first start.",
    )
    host: str = "127.0.0.1"
    port: int = 8084
    processes: int = Field(
        default=1, ge=1, le=64, description="`serve`: HTTP processes sharing the port."
    )
    log_level: str = "INFO"

    # Ingest behind a reverse proxy / load balancer.
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or CIDR blocks of reverse proxies whose "
        "X-Forwarded-For / Forwarded / X-Forwarded-Proto headers are believed (context.ip).",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="The URL browsers reach eventrelay at, for the SDK settings it serves "
        "(default: the scheme and Host of each request).",
    )

    # HTTP server limits (`serve`), per process: see server/guard.py and docs/deployment.md.
    max_header_bytes: int = Field(
        default=32 * 1024, ge=1024, le=1024 * 1024, description="Request line + headers (431)."
    )
    max_request_line_bytes: int = Field(
        default=8 * 1024, ge=256, le=1024 * 1024, description="Request target (414)."
    )
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="From a request's first byte to the end of its headers."
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="From the end of the headers to the end of the body."
    )
    keepalive_timeout_seconds: int = Field(
        default=5, ge=1, le=3600, description="A connection with no request in progress is closed."
    )
    max_connections: int = Field(
        default=4096,
        ge=16,
        le=1_000_000,
        description="Open connections per process; when full the longest idle one is closed.",
    )

    # Delivery policy.
    allow_private_targets: bool = Field(
        default=False,
        description="Allow webhook targets on loopback/private/link-local addresses (tests).",
    )
    max_event_age_seconds: float = Field(default=4 * 3600, gt=0)
    error_window_seconds: float = Field(
        default=600,
        gt=0,
        description="Failing this long with no success puts an integration in error.",
    )
    retry_base_seconds: float = Field(default=1.0, gt=0)
    retry_cap_seconds: float = Field(default=600.0, gt=0)
    http_timeout_seconds: float = Field(default=15.0, gt=0)
    drain_seconds: float = Field(
        default=20.0, ge=0, description="On shutdown, how long in-flight deliveries may finish."
    )
    delivery_concurrency: int = Field(
        default=4, ge=1, le=256, description="Requests in flight per integration."
    )

    queue_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Embedded queue: a pulled batch its worker has not settled or renewed in"
        " this time is handed out again (JetStream's ack wait is EVENTRELAY_NATS_ACK_WAIT_SECONDS).",
    )

    load_buffer_mb: int = Field(
        default=512,
        ge=16,
        description="File-loading types (S3, warehouses): memory for events held in buffers and"
        " loads, shared by all their integrations in a process; past it buffers flush early.",
    )

    # Embedded queue durability: "full" fsyncs every group commit; "normal" survives a process
    # crash (kill -9) but not an OS crash.
    queue_sync: str = Field(default="full", pattern="^(full|normal)$")
    # Embedded queue: how long an event stays in its source's log once every integration has
    # settled it (0: dropped at once). An archive for replay needs more.
    queue_retention_seconds: float = Field(default=0.0, ge=0)

    # Routing rules' JavaScript sandbox: wall-clock time per event and heap per isolate.
    rules_js_timeout_ms: float = Field(default=50.0, gt=0, le=10_000)
    rules_js_memory_mb: int = Field(default=64, ge=16, le=4096)

    # NATS JetStream.
    nats_replicas: int = Field(default=1, ge=1, le=5)
    nats_storage: str = Field(default="file", pattern="^(file|memory)$")
    nats_stream: str = "EVENTRELAY_DELIVER"
    nats_subject_prefix: str = Field(
        default="eventrelay.deliver",
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        description="Subjects are <prefix>-log.<source id>; distinct per deployment sharing NATS.",
    )
    nats_ack_wait_seconds: float = Field(
        default=60.0, gt=0, description="Redeliver a message a worker has not settled in this time."
    )
    nats_dedup_window_seconds: float = Field(default=120.0, ge=0)
    # A follower waits 4-9 s for a lost leader before it campaigns (nats-server's Raft): the
    # default rides through one election (measured 6.3 s on a 3-node cluster).
    nats_publish_deadline_seconds: float = Field(
        default=12.0,
        gt=0,
        description="Ingest retries a publish JetStream did not store (no stream leader during"
        " an election, a lost server) for this long before answering 503.",
    )

    # Console accounts (control/auth.py).
    access_token_seconds: int = Field(
        default=300, ge=5, le=3600, description="Lifetime of a signed access token (JWT)."
    )
    session_days: float = Field(
        default=14, gt=0, le=365, description="A login's refresh tokens stop working after this."
    )
    login_window_seconds: int = Field(
        default=900, ge=1, description="Failed logins are counted over this sliding window."
    )
    login_failures_per_account: int = Field(
        default=5, ge=1, description="Failed logins per email in the window before 429."
    )
    login_failures_per_address: int = Field(
        default=50, ge=1, description="Failed logins per client address in the window before 429."
    )
    owner_email: str | None = Field(
        default=None,
        description="First start: also create this owner user (with EVENTRELAY_OWNER_PASSWORD).",
    )
    owner_password: SecretStr | None = None

    # Vendor base URLs, only ever set by operators (tests point them at local stand-ins).
    vendor_base_urls: dict[str, str] = Field(default_factory=dict)

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        parse_networks(value)
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        """SQLAlchemy async URL for the control-plane database."""
        url = self.database_url
        if not url:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'eventrelay.db').resolve()}"
        if url.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    @property
    def postgres_dsn(self) -> str:
        """The database URL as a plain libpq DSN (for LISTEN/NOTIFY through asyncpg)."""
        url = self.resolved_database_url
        return "postgresql://" + url.split("://", 1)[1]

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @cached_property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def key_file(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret.key"

    @property
    def owner_token_file(self) -> Path:
        return self.data_dir / "owner-token"

    @property
    def queue_path(self) -> Path:
        return self.data_dir / "queue.db"
