"""Layer 3: ingest bookkeeping, analysis runs, review cases and findings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("loaded", sa.Integer(), nullable=False),
        sa.Column("already_present", sa.Integer(), nullable=False),
        sa.Column("bad_lines", sa.Integer(), nullable=False),
        sa.Column("detail", JSON),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_runs"),
    )
    op.create_index("ix_ingest_runs_sha256", "ingest_runs", ["sha256"])

    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("window_start", TS),
        sa.Column("window_end", TS),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("detail", JSON),
        sa.PrimaryKeyConstraint("id", name="pk_analysis_runs"),
    )
    op.create_index("ix_analysis_runs_started_at", "analysis_runs", ["started_at"])

    op.create_table(
        "cases",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("category", sa.Text()),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("user_ids", JSON, nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("window_start", TS),
        sa.Column("window_end", TS),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("reviewer", sa.Text()),
        sa.Column("note", sa.Text()),
        sa.Column("enforcement_action_id", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.CheckConstraint("kind IN ('abuse', 'wellbeing', 'coordination')", name="ck_cases_kind"),
        sa.CheckConstraint(
            "status IN ('open', 'confirmed', 'dismissed', 'escalated')", name="ck_cases_status"
        ),
    )
    op.create_index("ix_cases_status_severity", "cases", ["status", "severity"])
    op.create_index("ix_cases_kind_status", "cases", ["kind", "status"])

    op.create_table(
        "findings",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("category", sa.Text()),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("window_start", TS),
        sa.Column("window_end", TS),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
    )
    op.create_index("ix_findings_user_id", "findings", ["user_id"])
    op.create_index("ix_findings_case_id", "findings", ["case_id"])

    op.create_table(
        "offline_keys",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_offline_keys"),
    )


def downgrade() -> None:
    for table in ("offline_keys", "findings", "cases", "analysis_runs", "ingest_runs"):
        op.drop_table(table)
