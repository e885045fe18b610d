"""Whether ``--enforce`` may act on a case. An abuse case that rests on a
decomposition chain alone (requests each harmless on its own, judged
together) is for a reviewer, never an automatic restriction; the dashboard
says so on the case.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("enforceable", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("enforceable")
