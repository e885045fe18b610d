"""What each dashboard role may see and do.

``analyst`` is aggregate-only: charts, counts and the k-anonymous topic map,
never a message, a case's evidence, a user's history or a search result.
"""

from __future__ import annotations

AGGREGATES = "aggregates"  # overview, topic map
CASES = "cases"  # queue, case evidence, decisions
HISTORY = "history"  # a user's raw history, account actions
SEARCH = "search"  # event search across messages
AUDIT = "audit"  # the audit log

PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({AGGREGATES, CASES, HISTORY, SEARCH, AUDIT}),
    "reviewer": frozenset({AGGREGATES, CASES, HISTORY, SEARCH}),
    "analyst": frozenset({AGGREGATES}),
}


def allows(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())
