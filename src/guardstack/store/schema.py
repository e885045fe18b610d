"""The event store's tables, as SQLAlchemy Core metadata.

This is the schema *as of the latest migration*; the migrations under
``migrations/versions`` are what create it, and a test checks the two agree.
Change both together (new migration + this file), never only one.

Naming: users and tenants are plain id strings (no tables of their own); the
columns are ``user_id`` / ``tenant_id`` because ``user`` is a reserved word in
PostgreSQL (``SELECT user`` returns the database role, a trap for analysts).
Timestamps are stored in UTC and read back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

#: Account states, least to most restrictive.
ACCOUNT_STATES = ("none", "warn", "rate_limited", "suspended")
DECISIONS = ("allow", "flag", "block")

# Deterministic constraint names so later migrations can drop/alter them by name.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """DateTime stored as UTC and always returned timezone-aware.

    SQLite has no timezone type and hands back naive values; without this
    the same query would return naive datetimes on SQLite and aware ones on
    PostgreSQL, and comparisons between them raise.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite stores the string as given; keep it naive-UTC there so
        # lexical order equals time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: JSON everywhere, JSONB on PostgreSQL (indexable, faster to query).
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
#: 64-bit autoincrement key; SQLite only autoincrements INTEGER PRIMARY KEY.
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

exchanges = sa.Table(
    "exchanges",
    metadata,
    # The gateway's request id (uuid). Being the primary key is what makes
    # spool replay idempotent: a replayed event is ignored, never duplicated.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("ts_start", UTCDateTime(), nullable=False),
    sa.Column("ts_end", UTCDateTime()),
    sa.Column("user_id", sa.Text()),
    sa.Column("tenant_id", sa.Text()),
    sa.Column("api_key_id", sa.String(64)),
    sa.Column("conversation_id", sa.Text()),
    sa.Column("model", sa.Text()),
    sa.Column("endpoint", sa.Text()),
    sa.Column("stream", sa.Boolean(), nullable=False, default=False),
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
    sa.Column("halted", sa.Boolean(), nullable=False, default=False),
    sa.Column("redacted", sa.Boolean(), nullable=False, default=False),
    # Anything else the gateway wants to keep (upstream name, policy
    # version, client ip ...), so a new field does not need a migration.
    sa.Column("extra", JSONType),
    sa.Index(None, "user_id", "ts_start"),
    sa.Index(None, "tenant_id", "ts_start"),
    sa.Index(None, "conversation_id", "ts_start"),
    sa.Index(None, "ts_start"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column(
        "exchange_id",
        sa.String(64),
        sa.ForeignKey("exchanges.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("idx", sa.Integer(), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("content", sa.Text(), nullable=False),
    sa.Column("ts", UTCDateTime(), nullable=False),
    # Denormalised from the exchange so per-user and per-conversation scans
    # (layer 3's main access path) need no join.
    sa.Column("user_id", sa.Text()),
    sa.Column("tenant_id", sa.Text()),
    sa.Column("conversation_id", sa.Text()),
    sa.Column("decision", sa.String(16)),
    sa.Column("scores", JSONType),
    sa.Column("categories", JSONType),
    sa.Column("detector", sa.Text()),
    sa.Column("status", sa.String(16)),
    sa.Column("latency_ms", sa.Float()),
    # Little-endian float32 or float16 vector of the classifier's embedding.
    sa.Column("embedding", sa.LargeBinary()),
    sa.Column("embedding_dtype", sa.String(8)),
    sa.Column("embedding_dim", sa.Integer()),
    # A replayed event re-inserts the same (exchange, idx): ignored.
    sa.UniqueConstraint("exchange_id", "idx"),
    sa.Index(None, "user_id", "ts"),
    sa.Index(None, "conversation_id", "ts"),
    sa.Index(None, "decision", "ts"),
    sa.Index(None, "ts"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    # sha256 hex of the plaintext key; the plaintext is never stored.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(32), nullable=False),
    sa.Column("user_id", sa.Text(), nullable=False),
    sa.Column("tenant_id", sa.Text()),
    sa.Column("name", sa.Text()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime()),
    # 0004: the key's caller names its end users (`user`, or a header); each is
    # then a user of its own, "<key user>:<end user>".
    sa.Column("end_users", sa.Boolean(), nullable=False, server_default=sa.false()),
    # 0008: the key's own rate limit (requests per second, bucket size); null:
    # the gateway's --rate-limit / --rate-burst.
    sa.Column("rate_limit", sa.Float()),
    sa.Column("rate_burst", sa.Integer()),
    sa.Index(None, "user_id"),
)

account_actions = sa.Table(
    "account_actions",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Text(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("previous_state", sa.String(16), nullable=False),
    sa.Column("actor", sa.Text(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("ts", UTCDateTime(), nullable=False),
    # The action this one undoes (set by reverse()), and the one that undid this.
    sa.Column("reverses", sa.BigInteger()),
    sa.Column("reversed_by", sa.BigInteger()),
    sa.CheckConstraint("state IN ('none', 'warn', 'rate_limited', 'suspended')", name="state"),
    sa.Index(None, "user_id", "ts"),
)

account_states = sa.Table(
    "account_states",
    metadata,
    sa.Column("user_id", sa.Text(), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("last_action_id", sa.BigInteger()),
    sa.CheckConstraint("state IN ('none', 'warn', 'rate_limited', 'suspended')", name="state"),
    sa.Index(None, "state"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("ts", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.Text(), nullable=False),
    sa.Column("action", sa.Text(), nullable=False),
    sa.Column("subject_user", sa.Text()),
    sa.Column("detail", JSONType),
    sa.Index(None, "subject_user", "ts"),
    sa.Index(None, "ts"),
    sa.Index(None, "actor", "ts"),  # 0003
)

# -- layer 3 (offline analysis), migration 0002 ---------------------------------

#: Review-queue vocabulary.
CASE_KINDS = ("abuse", "wellbeing", "coordination", "injection")  # injection: 0005
CASE_STATUSES = ("open", "confirmed", "dismissed", "escalated")

ingest_runs = sa.Table(
    "ingest_runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    # sha256 of the file's bytes: the same file loaded twice is one run, resumed.
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("lines", sa.Integer(), nullable=False, default=0),
    sa.Column("loaded", sa.Integer(), nullable=False, default=0),
    sa.Column("already_present", sa.Integer(), nullable=False, default=0),
    sa.Column("bad_lines", sa.Integer(), nullable=False, default=0),
    sa.Column("detail", JSONType),
    sa.Index(None, "sha256"),
)

analysis_runs = sa.Table(
    "analysis_runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("engine", sa.String(16), nullable=False),
    sa.Column("window_start", UTCDateTime()),
    sa.Column("window_end", UTCDateTime()),
    sa.Column("messages", sa.Integer(), nullable=False, default=0),
    sa.Column("users", sa.Integer(), nullable=False, default=0),
    sa.Column("detail", JSONType),
    sa.Index(None, "started_at"),
)

cases = sa.Table(
    "cases",
    metadata,
    # Deterministic: hash of (kind, subject, window), so a re-run over the same
    # window updates its cases instead of adding new ones.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("label", sa.String(16), nullable=False),
    sa.Column("category", sa.Text()),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("score", sa.Float(), nullable=False),
    # Pseudonymous subject (user pseudonym or group id) for display; the raw
    # user ids stay in user_ids, read only inside the store.
    sa.Column("subject", sa.Text(), nullable=False),
    sa.Column("user_ids", JSONType, nullable=False),
    sa.Column("evidence", JSONType, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("window_start", UTCDateTime()),
    sa.Column("window_end", UTCDateTime()),
    sa.Column("first_seen", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("reviewer", sa.Text()),
    sa.Column("note", sa.Text()),
    sa.Column("enforcement_action_id", sa.BigInteger()),
    # False for a case --enforce never acts on (a decomposition chain alone): 0006
    sa.Column("enforceable", sa.Boolean(), nullable=False, server_default=sa.true()),
    # When analyze --notify delivered the case to the team's webhook: 0007
    sa.Column("notified_at", UTCDateTime()),
    sa.CheckConstraint("kind IN ('abuse', 'wellbeing', 'coordination', 'injection')",
                       name="kind"),
    sa.CheckConstraint(
        "status IN ('open', 'confirmed', 'dismissed', 'escalated')", name="status"
    ),
    sa.Index(None, "status", "severity"),
    sa.Index(None, "kind", "status"),
    sa.Index(None, "status", "severity", "score", "id"),  # 0003: the review queue
)

findings = sa.Table(
    "findings",
    metadata,
    # Deterministic like cases: one row per (user, label, window).
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Text(), nullable=False),
    sa.Column("pseudonym", sa.String(64), nullable=False),
    sa.Column("label", sa.String(16), nullable=False),
    sa.Column("category", sa.Text()),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("case_id", sa.String(64), nullable=False),
    sa.Column("evidence", JSONType, nullable=False),
    sa.Column("window_start", UTCDateTime()),
    sa.Column("window_end", UTCDateTime()),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Index(None, "user_id"),
    sa.Index(None, "case_id"),
    sa.Index(None, "pseudonym"),  # 0003
)

offline_keys = sa.Table(
    "offline_keys",
    metadata,
    # The pseudonym key when $GUARDSTACK_PSEUDONYM_KEY is not set: random,
    # created once. Whoever can read this table can read raw ids anyway; the
    # key protects findings *exported* from the store (JSON, dashboards, logs).
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# -- review dashboard, migration 0003 -------------------------------------------

DASHBOARD_ROLES = ("admin", "reviewer", "analyst")

dashboard_users = sa.Table(
    "dashboard_users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    # "scrypt$n$r$p$salt$hash" (base64); the password itself is never stored.
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("failed_logins", sa.Integer(), nullable=False, default=0),
    sa.Column("locked_until", UTCDateTime()),
    sa.Column("last_login", UTCDateTime()),
    sa.CheckConstraint("role IN ('admin', 'reviewer', 'analyst')", name="role"),
)

dashboard_sessions = sa.Table(
    "dashboard_sessions",
    metadata,
    # sha256 hex of the cookie's token: a leaked table does not log anyone in.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "user_name",
        sa.String(64),
        sa.ForeignKey("dashboard_users.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Index(None, "user_name"),
)

topic_clusters = sa.Table(
    "topic_clusters",
    metadata,
    # The topic map of one analysis run, as shown: only clusters that met the
    # k-anonymity rule (``min_users``) at the time, labels already redacted.
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("label", sa.Text(), nullable=False),
    sa.Column("terms", JSONType, nullable=False),
    sa.Column("users", sa.Integer(), nullable=False),
    sa.Column("messages", sa.Integer(), nullable=False),
    sa.Column("flag_rate", sa.Float(), nullable=False),
    sa.Column("flag_rate_earlier", sa.Float(), nullable=False),
    sa.Column("flag_rate_recent", sa.Float(), nullable=False),
    sa.Column("rising", sa.Boolean(), nullable=False),
    sa.Column("examples", JSONType, nullable=False),
    sa.Column("min_users", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index(None, "created_at"),
)

traffic_rollup = sa.Table(
    "traffic_rollup",
    metadata,
    # Messages per UTC day, role and decision (category "") and flagged or
    # blocked messages per category: the overview's charts, kept up to date
    # incrementally (rollup_state.last_id) instead of scanning all traffic.
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("role", sa.String(16), primary_key=True),
    sa.Column("decision", sa.String(16), primary_key=True),
    sa.Column("category", sa.String(64), primary_key=True),
    sa.Column("n", sa.BigInteger(), nullable=False),
)

rollup_state = sa.Table(
    "rollup_state",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    # Highest messages.id already counted into traffic_rollup.
    sa.Column("last_id", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# -- shared rate limits, migration 0009 -------------------------------------------

rate_buckets = sa.Table(
    "rate_buckets",
    metadata,
    # One row per rate-limit bucket in use (``serve --shared-rate-limits``):
    # sha256 of the bucket's key (never the user id itself) and its GCRA
    # "theoretical arrival time", POSIX seconds. A row whose time has passed is
    # a full bucket and may be deleted.
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("tat", sa.Float(), nullable=False),
    sa.Index(None, "tat"),
)

# -- shared stored responses, migration 0010 ---------------------------------------

stored_responses = sa.Table(
    "stored_responses",
    metadata,
    # One row per Responses API answer a client may continue with
    # ``previous_response_id`` (``serve --shared-responses``): the conversation
    # that produced it, its answer last, as JSON; the owner as the sha256 of
    # the user id (NULL for an anonymous request), never the id itself; the
    # conversation its chain is filed under; when it was stored, POSIX
    # seconds. Deleted after ``--stored-responses-ttl`` and by ``purge``.
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("conversation_id", sa.Text(), nullable=False),
    sa.Column("messages", sa.Text(), nullable=False),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Index(None, "created_at"),
)
