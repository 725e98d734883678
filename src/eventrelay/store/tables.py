"""SQLAlchemy Core tables of the control plane. Migrations in `migrations/` must match these.

Every resource has an integer `pk` (monotonic: the cursor for pagination) and a public `id`
(prefix + random tail). Deleted sources and integrations keep their rows (`deleted_at`) so their
IDs are never reused and audit entries and metrics still resolve them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the Python side on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def _pk() -> Column[int]:
    return Column(
        "pk",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


organizations = Table(
    "organizations",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("consent_categories", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Organisation-wide rules (drop, redact, hash) applied at ingest; null: none.
    Column("rules", JSONType),
)

tokens = Table(
    "tokens",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    Column("org_id", String(40), ForeignKey("organizations.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

sources = Table(
    "sources",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    Column("org_id", String(40), ForeignKey("organizations.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("consent_default", String(8), nullable=False),
    Column("allowed_origins", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
)

write_keys = Table(
    "write_keys",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    Column("source_id", String(40), ForeignKey("sources.id"), nullable=False, index=True),
    Column("key", String(80), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    # Set when a newer key replaced this one: it keeps working until then (rotation grace).
    Column("expires_at", UTCDateTime),
)

integrations = Table(
    "integrations",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    Column("org_id", String(40), ForeignKey("organizations.id"), nullable=False),
    Column("source_id", String(40), ForeignKey("sources.id"), nullable=False),
    Column("type", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("enabled", Boolean, nullable=False),
    # The config exactly as shown to users: secret values replaced by "***".
    Column("config", JSONType, nullable=False),
    # The secret values, {json path: value}, encrypted as one token (vault.py).
    Column("secrets", Text, nullable=False),
    Column("consent_categories", JSONType, nullable=False),
    # active | paused | error. `enabled` is the user's switch; `error` is set by delivery.
    Column("status", String(8), nullable=False),
    Column("last_error_message", Text),
    Column("last_error_at", UTCDateTime),
    Column("failing_since", UTCDateTime),
    Column("last_delivery_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
    Index("ix_integrations_org_source", "org_id", "source_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    Column("org_id", String(40), ForeignKey("organizations.id"), nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor_token_id", String(40)),
    Column("actor_name", String(200), nullable=False),
    Column("resource_type", String(32), nullable=False),
    Column("resource_id", String(40), nullable=False),
    Column("changes", JSONType, nullable=False),
    Column("ip", String(64)),
    Column("user_agent", String(512)),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_audit_log_org_resource", "org_id", "resource_type", "resource_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _pk(),
    Column("org_id", String(40), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("response_status", Integer),
    # What the request created (its id); the response is rendered again from it on replay, so
    # no response body (which may hold a secret) is ever stored.
    Column("resource_id", String(40)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    UniqueConstraint("org_id", "key", name="uq_idempotency_keys_org_key"),
)

# Additive counters per integration and minute; `key` carries a breakdown (discard reason,
# latency histogram bucket). Many workers add to the same row with an upsert.
delivery_metrics = Table(
    "delivery_metrics",
    metadata,
    Column("integration_id", String(40), primary_key=True),
    Column("bucket", UTCDateTime, primary_key=True),
    Column("name", String(48), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

delivery_failures = Table(
    "delivery_failures",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    Column("integration_id", String(40), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(64)),
    Column("status_code", Integer),
    Column("error", Text),
    Column("attempt", Integer, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("message_ids", JSONType, nullable=False),
    Column("request", JSONType),
    Column("response", JSONType),
    Index("ix_delivery_failures_integration", "integration_id", "pk"),
)

# One row: bumped on every configuration change, polled by processes sharing a SQLite database
# (PostgreSQL deployments use LISTEN/NOTIFY instead).
config_version = Table(
    "config_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# The load journal of file-loading destinations (delivery/load_journal.py): which events a
# staged batch holds, written before it is uploaded and deleted once its events are
# acknowledged. Events redelivered after a crash are matched against it.
load_batches = Table(
    "load_batches",
    metadata,
    _pk(),
    Column("integration_id", String(40), nullable=False),
    Column("batch_id", String(64), nullable=False),
    Column("owner", String(40), nullable=False),
    Column("refs", JSONType, nullable=False),  # staged object keys / tables
    Column("event_count", Integer, nullable=False),
    Column("message_ids", LargeBinary, nullable=False),  # zlib of newline-joined ids
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("integration_id", "batch_id", name="uq_load_batches_integration_batch"),
    Index("ix_load_batches_created_at", "created_at"),
)

# People who sign in to the console (control/users.py). The email is stored lower-cased and is
# unique across organisations: it alone names the account at login.
users = Table(
    "users",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    Column("org_id", String(40), ForeignKey("organizations.id"), nullable=False, index=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    # invited (no password yet) | active | deactivated
    Column("status", String(12), nullable=False),
    Column("password_hash", String(200)),  # Argon2id, PHC string
    # One-time link secret (invitation or reset by an admin), SHA-256 hashed, with its expiry.
    Column("setup_token_hash", String(64), unique=True),
    Column("setup_expires_at", UTCDateTime),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime),
)

# A login: the family of refresh tokens it hands out. Revoked on logout, deactivation, password
# change or reset, and when a refresh token is used twice (it was stolen).
sessions = Table(
    "sessions",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    Column("user_id", String(40), ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("revoked_reason", String(32)),
    Column("ip", String(64)),
    Column("user_agent", String(512)),
)

# Refresh tokens (opaque, SHA-256 hashed): each is good once; `used_at` set means rotated.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    _pk(),
    Column("session_id", String(40), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

# Failed logins, per key ("account:<email>" or "address:<ip>"), counted over a sliding window
# in the database so that every API process of a scale-out deployment sees the same count.
login_failures = Table(
    "login_failures",
    metadata,
    _pk(),
    Column("key", String(300), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_login_failures_key_created", "key", "created_at"),
)
