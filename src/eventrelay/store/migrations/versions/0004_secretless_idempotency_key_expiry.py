"""Idempotency records keep a reference to what they created, never the response (it may hold
a secret: a new admin token); write keys get an expiry (rotation with a grace period).

Revision ID: 0004
Revises: 0003_load_batches
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from eventrelay.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003_load_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Finished records may hold plaintext admin tokens: drop them (a replay within the next
    # 24 hours runs the request again, which is what an unknown key does).
    op.execute(sa.text("DELETE FROM idempotency_keys WHERE state = 'done'"))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("resource_id", sa.String(40)))
        batch.drop_column("response_body")
    with op.batch_alter_table("write_keys") as batch:
        batch.add_column(sa.Column("expires_at", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("write_keys") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("response_body", sa.Text()))
        batch.drop_column("resource_id")
