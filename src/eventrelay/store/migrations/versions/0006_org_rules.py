"""Organisation-wide rules (drop, redact, hash), applied at ingest before any integration's.

Revision ID: 0006_org_rules
Revises: 0005_users_and_sessions
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from eventrelay.store.tables import JSONType

revision = "0006_org_rules"
down_revision = "0005_users_and_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("organizations", sa.Column("rules", JSONType))


def downgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("rules")
