"""Load journal of file-loading destinations (S3, warehouses).

Revision ID: 0003_load_batches
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from eventrelay.store.tables import JSONType, UTCDateTime

revision = "0003_load_batches"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "load_batches",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("integration_id", sa.String(40), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(40), nullable=False),
        sa.Column("refs", JSONType, nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("message_ids", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_load_batches"),
        sa.UniqueConstraint("integration_id", "batch_id", name="uq_load_batches_integration_batch"),
    )
    op.create_index("ix_load_batches_created_at", "load_batches", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_load_batches_created_at", "load_batches")
    op.drop_table("load_batches")
