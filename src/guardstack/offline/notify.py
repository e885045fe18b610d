"""Telling the team about new cases: ``guardstack analyze --notify URL``.

A trust-and-safety team does not watch the review queue all day; a case of
high severity should reach them where they are (a Slack or Teams channel,
an incident tool). After analysis writes its cases, each open case at or
above ``--notify-severity`` that was never delivered is POSTed to the
webhook as one JSON object::

    {"text": "guardstack: high abuse case (cyber, score 0.91) for u-3f9c1a...: https://...",
     "event": "case.opened",
     "case": {"id": "case-...", "kind": "abuse", "label": "malicious",
              "category": "cyber", "severity": "high", "score": 0.91,
              "subject": "u-3f9c1a...", "accounts": 1, "enforceable": true,
              "first_seen": "2026-11-27T01:02:03+00:00", "url": "https://..."}}

``text`` is what Slack's and Teams' incoming webhooks show; the rest is for
tools that read JSON. Only what the review queue shows goes out: the
pseudonymous subject and a count of accounts, never raw user ids or message
text. A case is delivered once (``cases.notified_at``, migration 0007); a
delivery that fails stops the round and is retried by the next run, so
nothing is lost to a webhook that is down. Each round that sends anything
is written to the audit log (actor ``guardstack analyze``, action
``notify``, the case ids and the webhook's host).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa

from guardstack.offline.settings import SEVERITIES
from guardstack.store import audit
from guardstack.store.engine import Store
from guardstack.store.events import utcnow
from guardstack.store.schema import cases as cases_table

ACTOR = "guardstack analyze"


@dataclass
class NotifyReport:
    sent: list[str] = field(default_factory=list)
    pending: int = 0  # cases left for the next run (a delivery failed)
    error: str | None = None


def due(store: Store, min_severity: str) -> list[dict[str, Any]]:
    """Open cases at or above ``min_severity`` not yet delivered, most severe first."""
    levels = SEVERITIES[SEVERITIES.index(min_severity):]
    query = (sa.select(cases_table.c.id, cases_table.c.kind, cases_table.c.label,
                       cases_table.c.category, cases_table.c.severity, cases_table.c.score,
                       cases_table.c.subject, cases_table.c.user_ids,
                       cases_table.c.enforceable, cases_table.c.first_seen)
             .where(cases_table.c.status == "open", cases_table.c.notified_at.is_(None),
                    cases_table.c.severity.in_(levels)))
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(rows, key=lambda r: (-rank[r["severity"]], -r["score"], r["id"]))


def payload(row: dict[str, Any], dashboard_url: str | None) -> dict[str, Any]:
    url = f"{dashboard_url.rstrip('/')}/cases/{row['id']}" if dashboard_url else None
    accounts = len(row["user_ids"] or [])
    category = row["category"] or row["label"]
    text = (f"guardstack: {row['severity']} {row['kind']} case ({category}, score "
            f"{row['score']:.2f}) for {row['subject']}"
            + (f", {accounts} accounts" if accounts > 1 else "")
            + ("" if row["enforceable"] else "; for review only")
            + (f": {url}" if url else f" ({row['id']})"))
    return {"text": text, "event": "case.opened", "case": {
        "id": row["id"], "kind": row["kind"], "label": row["label"], "category": row["category"],
        "severity": row["severity"], "score": round(float(row["score"]), 4),
        "subject": row["subject"], "accounts": accounts, "enforceable": bool(row["enforceable"]),
        "first_seen": row["first_seen"].isoformat() if row["first_seen"] else None,
        "url": url}}


def notify(store: Store, webhook: str, *, min_severity: str = "high",
           dashboard_url: str | None = None, timeout: float = 10.0,
           transport: httpx.BaseTransport | None = None) -> NotifyReport:
    """Deliver every due case to ``webhook``, one POST each, marking each
    one delivered as its POST succeeds (2xx); the first failure ends the
    round, and what is left waits for the next."""
    if min_severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {min_severity!r}")
    rows = due(store, min_severity)
    report = NotifyReport()
    if not rows:
        return report
    with httpx.Client(timeout=timeout, transport=transport) as client:
        for i, row in enumerate(rows):
            try:
                response = client.post(webhook, json=payload(row, dashboard_url))
                failed = None if response.is_success else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                failed = f"{type(exc).__name__}: {exc}"
            if failed is not None:
                report.error = f"webhook {urlsplit(webhook).netloc}: {failed}"
                report.pending = len(rows) - i
                break
            with store.engine.begin() as conn:
                conn.execute(cases_table.update().where(cases_table.c.id == row["id"])
                             .values(notified_at=utcnow()))
            report.sent.append(row["id"])
    if report.sent:
        with store.engine.begin() as conn:
            audit.record(conn, actor=ACTOR, action="notify",
                         detail={"cases": report.sent, "host": urlsplit(webhook).netloc})
    return report
