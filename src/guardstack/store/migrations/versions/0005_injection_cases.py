"""A fourth kind of case: ``injection``, the same planted instructions read
by the agents of several accounts (layer 3's view of the gateway's tool-result
check). The accounts are the ones attacked, not the attackers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BEFORE = "kind IN ('abuse', 'wellbeing', 'coordination')"
_AFTER = "kind IN ('abuse', 'wellbeing', 'coordination', 'injection')"


def upgrade() -> None:
    # batch mode: SQLite cannot alter a constraint in place, it copies the table.
    with op.batch_alter_table("cases") as batch:
        batch.drop_constraint("ck_cases_kind", type_="check")
        batch.create_check_constraint("ck_cases_kind", _AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM findings WHERE case_id IN "
               "(SELECT id FROM cases WHERE kind = 'injection')")
    op.execute("DELETE FROM cases WHERE kind = 'injection'")
    with op.batch_alter_table("cases") as batch:
        batch.drop_constraint("ck_cases_kind", type_="check")
        batch.create_check_constraint("ck_cases_kind", _BEFORE)
