"""Initial schema: traffic log, API keys, account states and actions, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Written out in full (not generated from schema.py at run time) so this
revision stays what it was when later revisions change the tables. Layer 3's
findings / review-queue tables come in 0002 with ``down_revision = "0001"``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATE_CHECK = "state IN ('none', 'warn', 'rate_limited', 'suspended')"


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("ts_start", TS, nullable=False),
        sa.Column("ts_end", TS),
        sa.Column("user_id", sa.Text()),
        sa.Column("tenant_id", sa.Text()),
        sa.Column("api_key_id", sa.String(64)),
        sa.Column("conversation_id", sa.Text()),
        sa.Column("model", sa.Text()),
        sa.Column("endpoint", sa.Text()),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("http_status", sa.Integer()),
        sa.Column("finish_reason", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("classifier_ms", sa.Float()),
        sa.Column("upstream_ms", sa.Float()),
        sa.Column("ttft_ms", sa.Float()),
        sa.Column("total_ms", sa.Float()),
        sa.Column("prompt_tokens", sa.Integer()),
        sa.Column("completion_tokens", sa.Integer()),
        sa.Column("prompt_decision", sa.String(16)),
        sa.Column("response_decision", sa.String(16)),
        sa.Column("halted", sa.Boolean(), nullable=False),
        sa.Column("redacted", sa.Boolean(), nullable=False),
        sa.Column("extra", JSON),
        sa.PrimaryKeyConstraint("id", name="pk_exchanges"),
    )
    op.create_index("ix_exchanges_user_id_ts_start", "exchanges", ["user_id", "ts_start"])
    op.create_index("ix_exchanges_tenant_id_ts_start", "exchanges", ["tenant_id", "ts_start"])
    op.create_index(
        "ix_exchanges_conversation_id_ts_start", "exchanges", ["conversation_id", "ts_start"]
    )
    op.create_index("ix_exchanges_ts_start", "exchanges", ["ts_start"])

    op.create_table(
        "messages",
        sa.Column("id", BIGPK, autoincrement=True, nullable=False),
        sa.Column("exchange_id", sa.String(64), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("user_id", sa.Text()),
        sa.Column("tenant_id", sa.Text()),
        sa.Column("conversation_id", sa.Text()),
        sa.Column("decision", sa.String(16)),
        sa.Column("scores", JSON),
        sa.Column("categories", JSON),
        sa.Column("detector", sa.Text()),
        sa.Column("status", sa.String(16)),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("embedding", sa.LargeBinary()),
        sa.Column("embedding_dtype", sa.String(8)),
        sa.Column("embedding_dim", sa.Integer()),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["exchange_id"],
            ["exchanges.id"],
            name="fk_messages_exchange_id_exchanges",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("exchange_id", "idx", name="uq_messages_exchange_id_idx"),
    )
    op.create_index("ix_messages_user_id_ts", "messages", ["user_id", "ts"])
    op.create_index("ix_messages_conversation_id_ts", "messages", ["conversation_id", "ts"])
    op.create_index("ix_messages_decision_ts", "messages", ["decision", "ts"])
    op.create_index("ix_messages_ts", "messages", ["ts"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text()),
        sa.Column("name", sa.Text()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])

    op.create_table(
        "account_actions",
        sa.Column("id", BIGPK, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("previous_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("reverses", sa.BigInteger()),
        sa.Column("reversed_by", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id", name="pk_account_actions"),
        sa.CheckConstraint(STATE_CHECK, name="ck_account_actions_state"),
    )
    op.create_index("ix_account_actions_user_id_ts", "account_actions", ["user_id", "ts"])

    op.create_table(
        "account_states",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_action_id", sa.BigInteger()),
        sa.PrimaryKeyConstraint("user_id", name="pk_account_states"),
        sa.CheckConstraint(STATE_CHECK, name="ck_account_states_state"),
    )
    op.create_index("ix_account_states_state", "account_states", ["state"])

    op.create_table(
        "audit_log",
        sa.Column("id", BIGPK, autoincrement=True, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject_user", sa.Text()),
        sa.Column("detail", JSON),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_subject_user_ts", "audit_log", ["subject_user", "ts"])
    op.create_index("ix_audit_log_ts", "audit_log", ["ts"])


def downgrade() -> None:
    for table in ("audit_log", "account_states", "account_actions", "api_keys", "messages"):
        op.drop_table(table)
    op.drop_table("exchanges")
