"""Reviewer decisions: case statuses and account actions, each audited.

A decision is a label. ``confirmed`` is what ``guardstack export-training``
reads (table ``cases``, status ``confirmed``: the evidence messages were
harmful); ``dismissed`` keeps the case, its evidence and who dismissed it, so
the same messages serve as negative labels (false positives) for threshold
calibration. Every decision also goes to the audit log with the previous
status, so nothing a reviewer does is silent or lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from guardstack.store import audit
from guardstack.store.accounts import AccountAction, Accounts, parse_state
from guardstack.store.engine import Store
from guardstack.store.events import utcnow
from guardstack.store.schema import cases

#: Form action -> the case status it sets.
CASE_ACTIONS = {"confirm": "confirmed", "dismiss": "dismissed", "escalate": "escalated",
                "reopen": "open"}
#: States a reviewer can set from the dashboard.
SETTABLE_STATES = ("none", "warn", "rate_limited", "suspended")
MAX_NOTE = 2000


class DecisionError(ValueError):
    """A decision that cannot be applied (unknown case or action, missing note)."""


@dataclass(frozen=True)
class Decided:
    case_id: str
    previous: str
    status: str


def decide(store: Store, case_id: str, action: str, *, reviewer: str, note: str) -> Decided:
    status = CASE_ACTIONS.get(action)
    if status is None:
        raise DecisionError(f"unknown case action {action!r}")
    note = note.strip()[:MAX_NOTE]
    with store.engine.begin() as conn:
        query = sa.select(cases.c.status, cases.c.user_ids).where(cases.c.id == case_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise DecisionError(f"no case {case_id!r}")
        conn.execute(cases.update().where(cases.c.id == case_id).values(
            status=status, reviewer=reviewer, note=note or None, updated_at=utcnow()))
        users = list(row.user_ids or [])
        audit.record(conn, actor=reviewer, action=f"case.{action}",
                     subject_user=users[0] if len(users) == 1 else None,
                     detail={"case_id": case_id, "previous": row.status, "status": status,
                             "note": note, "users": users})
    return Decided(case_id, row.status, status)


def set_account_state(store: Store, users: list[str], state: str, *, reviewer: str,
                      reason: str, case_id: str | None = None) -> list[AccountAction]:
    """Put each of ``users`` in ``state`` (an ``account_actions`` row each,
    reversible), with the reviewer as actor."""
    parse_state(state)
    if not users:
        raise DecisionError("no user to act on")
    reason = reason.strip()[:MAX_NOTE]
    if not reason:
        raise DecisionError("say why: a reason is required for an account action")
    if case_id:
        reason = f"{reason} (case {case_id})"
    accounts = Accounts(store, cache_ttl=0)
    return [accounts.set_state(u, state, f"dashboard:{reviewer}", reason) for u in users]


def reverse_action(store: Store, action_id: int, *, reviewer: str, reason: str) -> AccountAction:
    reason = reason.strip()[:MAX_NOTE]
    if not reason:
        raise DecisionError("say why: a reason is required to reverse an action")
    return Accounts(store, cache_ttl=0).reverse(action_id, f"dashboard:{reviewer}", reason)
