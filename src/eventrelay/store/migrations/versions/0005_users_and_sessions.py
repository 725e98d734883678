"""User accounts of the console: users, login sessions with their refresh tokens, and failed
logins (rate limiting).

Revision ID: 0005_users_and_sessions
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from eventrelay.store.tables import UTCDateTime

revision = "0005_users_and_sessions"
down_revision = "0004"
branch_labels = None
depends_on = None


def _pk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "users",
        _pk(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("org_id", sa.String(40), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("password_hash", sa.String(200)),
        sa.Column("setup_token_hash", sa.String(64)),
        sa.Column("setup_expires_at", UTCDateTime),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("last_login_at", UTCDateTime),
        sa.PrimaryKeyConstraint("pk", name="pk_users"),
        sa.UniqueConstraint("id", name="uq_users_id"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.UniqueConstraint("setup_token_hash", name="uq_users_setup_token_hash"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_users_org_id_organizations"
        ),
    )
    op.create_index("ix_users_org_id", "users", ["org_id"])
    op.create_table(
        "sessions",
        _pk(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime),
        sa.Column("revoked_reason", sa.String(32)),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.String(512)),
        sa.PrimaryKeyConstraint("pk", name="pk_sessions"),
        sa.UniqueConstraint("id", name="uq_sessions_id"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_sessions_user_id_users"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "refresh_tokens",
        _pk(),
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime),
        sa.PrimaryKeyConstraint("pk", name="pk_refresh_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_refresh_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name="fk_refresh_tokens_session_id_sessions"
        ),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"])
    op.create_table(
        "login_failures",
        _pk(),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_key_created", "login_failures", ["key", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_key_created", "login_failures")
    op.drop_table("login_failures")
    op.drop_index("ix_refresh_tokens_session_id", "refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("ix_sessions_user_id", "sessions")
    op.drop_table("sessions")
    op.drop_index("ix_users_org_id", "users")
    op.drop_table("users")
