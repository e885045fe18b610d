"""Daily traffic counts for the overview, kept up to date incrementally.

Counting a month of traffic on every page view would read every message
(a million rows is seconds). Instead ``traffic_rollup`` holds counts per UTC
day, role and decision (and per category for flagged or blocked messages),
and ``rollup_state.last_id`` the highest ``messages.id`` already counted.
Each refresh counts only the messages added since (a primary-key range
scan), so a view costs what arrived since the last view, whoever wrote it
(gateway, ingest).

Limits: a message deleted later (``guardstack purge``) stays counted, which
suits a chart of what happened; on PostgreSQL with several concurrent
writers, a row whose transaction commits after a higher id was counted is
missed (``refresh(rebuild=True)`` recounts everything).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import sqlalchemy as sa

from guardstack.store.engine import Store
from guardstack.store.events import utcnow
from guardstack.store.schema import messages, rollup_state, traffic_rollup

NAME = "traffic"
#: Messages counted per refresh transaction: bounds a first, cold refresh.
BATCH = 200_000
_lock = threading.Lock()


def _day(dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", messages.c.ts), "YYYY-MM-DD")
    # SQLite holds naive-UTC ISO text (see schema.UTCDateTime).
    return sa.func.substr(sa.type_coerce(messages.c.ts, sa.Text()), 1, 10)


def _upsert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(traffic_rollup)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(traffic_rollup)
    return stmt.on_conflict_do_update(
        index_elements=["day", "role", "decision", "category"],
        set_={"n": traffic_rollup.c.n + stmt.excluded.n})


def refresh(store: Store, *, rebuild: bool = False) -> int:
    """Count messages added since the last refresh; returns the span of
    message ids counted (0: nothing new)."""
    counted = 0
    with _lock:
        while True:
            n = _refresh_batch(store, rebuild=rebuild and counted == 0)
            counted += n
            if n < BATCH:
                return counted


def _refresh_batch(store: Store, *, rebuild: bool) -> int:
    day = _day(store.dialect).label("day")
    with store.engine.begin() as conn:
        query = sa.select(rollup_state.c.last_id).where(rollup_state.c.name == NAME)
        if conn.dialect.name == "postgresql":
            # One refresher at a time across processes.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x726F6C6C})
            query = query.with_for_update()
        last = conn.execute(query).scalar()
        newest = conn.execute(sa.select(sa.func.max(messages.c.id))).scalar() or 0
        if rebuild or (last is not None and last > newest):
            # Rebuilt on request, or when the store was emptied under us.
            conn.execute(traffic_rollup.delete())
            last = None
        start = last or 0
        upto = min(newest, start + BATCH)
        if upto <= start:
            return 0
        in_range = (messages.c.id > start, messages.c.id <= upto)
        totals: Counter[tuple[str, str, str, str]] = Counter()
        for d, role, decision, n in conn.execute(
                sa.select(day, messages.c.role, messages.c.decision, sa.func.count())
                .where(*in_range).group_by(day, messages.c.role, messages.c.decision)):
            totals[(d, role, decision or "unjudged", "")] += n
        for d, role, decision, categories in conn.execute(
                sa.select(day, messages.c.role, messages.c.decision, messages.c.categories)
                .where(*in_range, messages.c.decision.in_(("flag", "block")))):
            for category in categories if isinstance(categories, list) else ():
                if isinstance(category, str) and category:
                    totals[(d, role, decision, category[:64])] += 1
        if totals:
            conn.execute(_upsert(store.dialect), [
                {"day": d, "role": r[:16], "decision": dec[:16], "category": c, "n": n}
                for (d, r, dec, c), n in totals.items()])
        values = {"last_id": upto, "updated_at": utcnow()}
        if last is None and conn.execute(sa.select(rollup_state.c.name)
                                         .where(rollup_state.c.name == NAME)).first() is None:
            conn.execute(rollup_state.insert().values(name=NAME, **values))
        else:
            conn.execute(rollup_state.update().where(rollup_state.c.name == NAME)
                         .values(**values))
    return upto - start
