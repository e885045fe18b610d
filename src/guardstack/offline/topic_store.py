"""The topic map, persisted: each analysis run's shown clusters go to the
``topic_clusters`` table so the dashboard can draw them without re-running
the clustering.

Only clusters :func:`guardstack.offline.topics.topic_map` already let through
(at least ``topic_k_anonymity`` distinct users, redacted labels and examples)
are written, with that minimum beside them; readers apply it again (and any
stricter minimum of their own), so a below-minimum cluster is never shown even
if a later setting is stricter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from guardstack.offline.topics import Cluster
from guardstack.store.engine import Store
from guardstack.store.events import utcnow
from guardstack.store.schema import topic_clusters


def write(store: Store, run_id: str, clusters: list[Cluster], min_users: int,
          *, now: datetime | None = None) -> int:
    """Store ``clusters`` of run ``run_id``; returns how many were written."""
    now = now or utcnow()
    rows: list[dict[str, Any]] = [{
        "run_id": run_id, "id": c.id, "label": c.label, "terms": list(c.terms),
        "users": c.users, "messages": c.messages, "flag_rate": c.flag_rate,
        "flag_rate_earlier": c.flag_rate_earlier, "flag_rate_recent": c.flag_rate_recent,
        "rising": c.rising, "examples": list(c.examples), "min_users": min_users,
        "created_at": now,
    } for c in clusters if c.users >= min_users]
    with store.engine.begin() as conn:
        # A cluster id is a hash of its terms; two clusters can share terms.
        conn.execute(topic_clusters.delete().where(topic_clusters.c.run_id == run_id))
        seen: set[str] = set()
        unique = []
        for r in rows:
            if r["id"] not in seen:
                seen.add(r["id"])
                unique.append(r)
        if unique:
            conn.execute(sa.insert(topic_clusters), unique)
    return len(unique)
