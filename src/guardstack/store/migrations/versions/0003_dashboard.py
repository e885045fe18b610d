"""Review dashboard: reviewer accounts, login sessions, the persisted topic map,
and the indexes the dashboard's pages need.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "dashboard_users",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", TS),
        sa.Column("last_login", TS),
        sa.PrimaryKeyConstraint("name", name="pk_dashboard_users"),
        sa.CheckConstraint("role IN ('admin', 'reviewer', 'analyst')",
                           name="ck_dashboard_users_role"),
    )
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dashboard_sessions"),
        sa.ForeignKeyConstraint(["user_name"], ["dashboard_users.name"], ondelete="CASCADE",
                                name="fk_dashboard_sessions_user_name_dashboard_users"),
    )
    op.create_index("ix_dashboard_sessions_user_name", "dashboard_sessions", ["user_name"])
    op.create_table(
        "topic_clusters",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("terms", JSON, nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("flag_rate", sa.Float(), nullable=False),
        sa.Column("flag_rate_earlier", sa.Float(), nullable=False),
        sa.Column("flag_rate_recent", sa.Float(), nullable=False),
        sa.Column("rising", sa.Boolean(), nullable=False),
        sa.Column("examples", JSON, nullable=False),
        sa.Column("min_users", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "id", name="pk_topic_clusters"),
    )
    op.create_index("ix_topic_clusters_created_at", "topic_clusters", ["created_at"])
    op.create_table(
        "traffic_rollup",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "role", "decision", "category",
                                name="pk_traffic_rollup"),
    )
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_rollup_state"),
    )
    # The queue: open cases by severity, then score.
    op.create_index("ix_cases_status_severity_score_id", "cases",
                    ["status", "severity", "score", "id"])
    op.create_index("ix_findings_pseudonym", "findings", ["pseudonym"])
    op.create_index("ix_audit_log_actor_ts", "audit_log", ["actor", "ts"])


def downgrade() -> None:
    for name, table in (("ix_audit_log_actor_ts", "audit_log"),
                        ("ix_findings_pseudonym", "findings"),
                        ("ix_cases_status_severity_score_id", "cases")):
        op.drop_index(name, table_name=table)
    for table in ("rollup_state", "traffic_rollup", "topic_clusters", "dashboard_sessions",
                  "dashboard_users"):
        op.drop_table(table)
