"""The audit log: who read whose raw history, and other administrative acts.

Reading a user's raw messages is itself an action worth accounting for;
code that shows raw history (dashboard, CLI) calls :func:`record` in the
same breath. Enforcement actions have their own richer record
(``account_actions``); key changes and purges are recorded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from guardstack.store.engine import Store
from guardstack.store.events import utcnow
from guardstack.store.schema import audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: datetime
    actor: str
    action: str
    subject_user: str | None
    detail: dict[str, Any] | None


def record(
    conn: sa.Connection,
    *,
    actor: str,
    action: str,
    subject_user: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an entry inside the caller's transaction (so the act and its
    record commit or fail together)."""
    if not actor or not action:
        raise ValueError("an audit entry needs an actor and an action")
    conn.execute(
        audit_log.insert().values(
            ts=utcnow(), actor=actor, action=action, subject_user=subject_user, detail=detail
        )
    )


def entries(
    store: Store, *, subject_user: str | None = None, limit: int = 1000
) -> list[AuditEntry]:
    """Newest first."""
    query = sa.select(audit_log).order_by(audit_log.c.ts.desc(), audit_log.c.id.desc())
    if subject_user is not None:
        query = query.where(audit_log.c.subject_user == subject_user)
    with store.engine.connect() as conn:
        rows = conn.execute(query.limit(limit)).mappings().all()
    return [AuditEntry(**dict(r)) for r in rows]
