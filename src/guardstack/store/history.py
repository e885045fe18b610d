"""Reading a user's raw message history, audited by construction.

Raw text of what a person sent is the most sensitive thing in the store, so
the one reader of it writes an ``audit_log`` entry (actor, reason, range) in
the same transaction: no read without a record. Aggregate analysis that
never shows raw text to a person can query the tables directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from guardstack.store import audit
from guardstack.store.engine import Store
from guardstack.store.errors import describe
from guardstack.store.schema import messages


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    exchange_id: str
    idx: int
    ts: datetime
    role: str
    content: str
    conversation_id: str | None
    tenant: str | None
    decision: str | None
    scores: dict[str, float] | None
    categories: list[str] | None


def user_history(
    store: Store,
    user: str,
    *,
    actor: str,
    reason: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[HistoryMessage]:
    """``user``'s messages (oldest first) in ``[since, until)``, at most
    ``limit``; records who read them and why in the audit log."""
    if not actor or not reason or not reason.strip():
        raise ValueError("reading raw history needs an actor and a reason")
    query = sa.select(messages).where(messages.c.user_id == user)
    if since is not None:
        query = query.where(messages.c.ts >= since)
    if until is not None:
        query = query.where(messages.c.ts < until)
    query = query.order_by(messages.c.ts, messages.c.exchange_id, messages.c.idx).limit(limit)
    detail: dict[str, Any] = {
        "reason": reason,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "limit": limit,
    }
    try:
        with store.engine.begin() as conn:
            rows = conn.execute(query).mappings().all()
            detail["returned"] = len(rows)
            audit.record(conn, actor=actor, action="history.read", subject_user=user, detail=detail)
    except sa_exc.SQLAlchemyError as exc:
        raise describe(exc, store.url) from None
    return [
        HistoryMessage(
            exchange_id=r["exchange_id"],
            idx=r["idx"],
            ts=r["ts"],
            role=r["role"],
            content=r["content"],
            conversation_id=r["conversation_id"],
            tenant=r["tenant_id"],
            decision=r["decision"],
            scores=r["scores"],
            categories=r["categories"],
        )
        for r in rows
    ]
