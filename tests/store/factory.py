"""Test data for the store: benign exchanges, and row counts."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from guardstack.store import ExchangeEvent, MessageRecord, Store
from guardstack.store.schema import exchanges


def make_event(n: int = 0, *, user: str = "alice", text: str | None = None, **kw) -> ExchangeEvent:
    """A benign exchange: one user message and the assistant's answer."""
    kw.setdefault("ts_start", datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    return ExchangeEvent(
        user=user,
        tenant="acme",
        conversation_id=f"conv-{user}",
        model="smollm2",
        endpoint="/v1/chat/completions",
        messages=[
            MessageRecord(
                role="user",
                content=text if text is not None else f"What is the capital of country {n}?",
                decision="allow",
                scores={"harm": 0.01},
                detector="fast",
                status="ok",
                embedding=[0.1 * n, 0.2, -0.3],
            ),
            MessageRecord(role="assistant", content=f"Answer {n}.", decision="allow"),
        ],
        **kw,
    )


def count(store: Store, table: sa.Table = exchanges) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def ids_in_db(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(exchanges.c.id)).scalars())
