"""Retention: delete traffic (exchanges and their messages, and stored
Responses API answers) older than N days.

Account actions, API keys and the audit log are the accountability record
and are kept. Each purge is itself written to the audit log. Deletes run in
chunks so a large purge neither holds one huge transaction nor blocks the
writer for long.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from guardstack.store import audit
from guardstack.store.engine import Store
from guardstack.store.errors import describe
from guardstack.store.events import utcnow
from guardstack.store.schema import exchanges, messages, stored_responses

_UNITS = {"d": 1.0, "w": 7.0, "h": 1 / 24}
MAX_AGE_DAYS = 36_525
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dwh]?)\s*$")


def parse_age(text: str) -> timedelta:
    """``"30d"``, ``"2w"``, ``"12h"`` or ``"30"`` (days) as a timedelta."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not an age: {text!r} (use e.g. 30d, 2w, 12h)")
    days = float(m.group(1)) * _UNITS[m.group(2) or "d"]
    if days <= 0:
        raise ValueError(f"age must be positive, got {text!r}")
    if days > MAX_AGE_DAYS:
        raise ValueError(f"age must be at most {MAX_AGE_DAYS} days (100 years), got {text!r}")
    return timedelta(days=days)


class Purged(NamedTuple):
    exchanges: int
    messages: int
    #: conversations kept for ``previous_response_id`` (``serve --shared-responses``)
    stored_responses: int


def purge(
    store: Store,
    older_than: timedelta,
    *,
    actor: str = "retention",
    now: datetime | None = None,
    chunk: int = 5000,
    dry_run: bool = False,
) -> Purged:
    """Delete exchanges that started before ``now - older_than``, their
    messages, and the Responses API answers stored before then. Returns what
    was deleted; with ``dry_run`` counts what would go and deletes nothing."""
    cutoff = (now or utcnow()) - older_than
    old = exchanges.c.ts_start < cutoff
    old_answers = stored_responses.c.created_at < cutoff.timestamp()
    try:
        if dry_run:
            with store.engine.connect() as conn:
                n_ex = conn.execute(sa.select(sa.func.count()).where(old)).scalar_one()
                n_msg = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(messages)
                    .where(messages.c.exchange_id.in_(sa.select(exchanges.c.id).where(old)))
                ).scalar_one()
                n_resp = conn.execute(
                    sa.select(sa.func.count()).select_from(stored_responses).where(old_answers)
                ).scalar_one()
            return Purged(n_ex, n_msg, n_resp)
        n_ex = n_msg = 0
        while True:
            with store.engine.begin() as conn:
                batch = sa.select(exchanges.c.id).where(old).limit(chunk)
                ids = conn.execute(batch).scalars().all()
                if not ids:
                    break
                # Explicit, not ON DELETE CASCADE: SQLite only cascades with
                # foreign_keys=ON, which another client may not have set.
                n_msg += conn.execute(
                    messages.delete().where(messages.c.exchange_id.in_(ids))
                ).rowcount
                n_ex += conn.execute(exchanges.delete().where(exchanges.c.id.in_(ids))).rowcount
        with store.engine.begin() as conn:
            n_resp = conn.execute(stored_responses.delete().where(old_answers)).rowcount
            audit.record(
                conn,
                actor=actor,
                action="purge",
                detail={
                    "cutoff": cutoff.isoformat(),
                    "exchanges": n_ex,
                    "messages": n_msg,
                    "stored_responses": n_resp,
                },
            )
    except sa_exc.SQLAlchemyError as exc:
        raise describe(exc, store.url) from None
    return Purged(n_ex, n_msg, n_resp)
