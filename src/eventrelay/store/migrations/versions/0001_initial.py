"""Initial control plane: organizations, tokens, sources, write keys, integrations, audit log,
idempotency keys, delivery metrics and failures.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from eventrelay.store.tables import JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _pk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "pk",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def upgrade() -> None:
    op.create_table(
        "organizations",
        _pk(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("consent_categories", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_organizations"),
        sa.UniqueConstraint("id", name="uq_organizations_id"),
    )
    op.create_table(
        "tokens",
        _pk(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("org_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_used_at", UTCDateTime),
        sa.Column("revoked_at", UTCDateTime),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_tokens_org_id_organizations"
        ),
        sa.PrimaryKeyConstraint("pk", name="pk_tokens"),
        sa.UniqueConstraint("id", name="uq_tokens_id"),
        sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
    )
    op.create_index("ix_tokens_org_id", "tokens", ["org_id"])
    op.create_table(
        "sources",
        _pk(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("org_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("consent_default", sa.String(8), nullable=False),
        sa.Column("allowed_origins", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("deleted_at", UTCDateTime),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_sources_org_id_organizations"
        ),
        sa.PrimaryKeyConstraint("pk", name="pk_sources"),
        sa.UniqueConstraint("id", name="uq_sources_id"),
    )
    op.create_index("ix_sources_org_id", "sources", ["org_id"])
    op.create_table(
        "write_keys",
        _pk(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name="fk_write_keys_source_id_sources"
        ),
        sa.PrimaryKeyConstraint("pk", name="pk_write_keys"),
        sa.UniqueConstraint("id", name="uq_write_keys_id"),
        sa.UniqueConstraint("key", name="uq_write_keys_key"),
    )
    op.create_index("ix_write_keys_source_id", "write_keys", ["source_id"])
    op.create_table(
        "integrations",
        _pk(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("org_id", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(40), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("consent_categories", JSONType, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("last_error_message", sa.Text()),
        sa.Column("last_error_at", UTCDateTime),
        sa.Column("failing_since", UTCDateTime),
        sa.Column("last_delivery_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("deleted_at", UTCDateTime),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_integrations_org_id_organizations"
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name="fk_integrations_source_id_sources"
        ),
        sa.PrimaryKeyConstraint("pk", name="pk_integrations"),
        sa.UniqueConstraint("id", name="uq_integrations_id"),
    )
    op.create_index("ix_integrations_org_source", "integrations", ["org_id", "source_id"])
    op.create_table(
        "audit_log",
        _pk(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("org_id", sa.String(40), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor_token_id", sa.String(40)),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(40), nullable=False),
        sa.Column("changes", JSONType, nullable=False),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.String(512)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_audit_log_org_id_organizations"
        ),
        sa.PrimaryKeyConstraint("pk", name="pk_audit_log"),
        sa.UniqueConstraint("id", name="uq_audit_log_id"),
    )
    op.create_index(
        "ix_audit_log_org_resource", "audit_log", ["org_id", "resource_type", "resource_id"]
    )
    op.create_table(
        "idempotency_keys",
        _pk(),
        sa.Column("org_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("response_status", sa.Integer()),
        sa.Column("response_body", sa.Text()),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_idempotency_keys"),
        sa.UniqueConstraint("org_id", "key", name="uq_idempotency_keys_org_key"),
    )
    op.create_table(
        "delivery_metrics",
        sa.Column("integration_id", sa.String(40), nullable=False),
        sa.Column("bucket", UTCDateTime, nullable=False),
        sa.Column("name", sa.String(48), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "integration_id", "bucket", "name", "key", name="pk_delivery_metrics"
        ),
    )
    op.create_table(
        "delivery_failures",
        _pk(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("integration_id", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64)),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("message_ids", JSONType, nullable=False),
        sa.Column("request", JSONType),
        sa.Column("response", JSONType),
        sa.PrimaryKeyConstraint("pk", name="pk_delivery_failures"),
        sa.UniqueConstraint("id", name="uq_delivery_failures_id"),
    )
    op.create_index(
        "ix_delivery_failures_integration", "delivery_failures", ["integration_id", "pk"]
    )


def downgrade() -> None:
    for table in (
        "delivery_failures",
        "delivery_metrics",
        "idempotency_keys",
        "audit_log",
        "integrations",
        "write_keys",
        "sources",
        "tokens",
        "organizations",
    ):
        op.drop_table(table)
