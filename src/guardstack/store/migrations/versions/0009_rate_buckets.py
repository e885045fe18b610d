"""Rate-limit buckets in the store (``guardstack serve --shared-rate-limits``),
so gateway replicas behind one load balancer share each user's limit instead
of allowing it once per replica.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("tat", sa.Float(), nullable=False),
    )
    op.create_index("ix_rate_buckets_tat", "rate_buckets", ["tat"])


def downgrade() -> None:
    op.drop_index("ix_rate_buckets_tat", table_name="rate_buckets")
    op.drop_table("rate_buckets")
