"""The review queue: cases built from findings, written idempotently.

A case id is a hash of (kind, subject, window), so running ``analyze`` again
over the same window updates each case (score, evidence, ``updated_at``)
instead of adding a new one, and keeps what reviewers set (``status``,
``reviewer``, ``note``) and when it was first seen. ``findings`` holds one row
per flagged (user, label) in the same way.

Kinds: ``abuse`` (label ``malicious``: risk, repeated jailbreak attempts or
a decomposition chain),
``wellbeing`` (label ``at_risk``: crisis trajectories, never the abuse
queue), ``coordination`` (label ``coordinated``: one case per group),
``injection`` (label ``injected``: the same planted instructions read by
several accounts' agents; those accounts are the attacked, so the case has
no findings and is never enforced).
Statuses: ``open`` (new), ``confirmed``, ``dismissed``, ``escalated``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from guardstack.offline.coordination import CoordGroup
from guardstack.offline.injections import PlantedGroup
from guardstack.offline.peruser import UserResult
from guardstack.offline.pseudonym import Pseudonymizer
from guardstack.offline.settings import SEVERITIES
from guardstack.store.engine import Store
from guardstack.store.events import utcnow
from guardstack.store.schema import cases as cases_table
from guardstack.store.schema import findings as findings_table

#: Categories whose cases start one severity step higher.
GRAVE = frozenset({"cbrn", "sexual_minors", "weapons"})


@dataclass
class Case:
    id: str
    kind: str
    label: str
    category: str
    severity: str
    score: float
    subject: str  # pseudonym or group id
    users: list[str]  # raw ids: stored, never printed
    pseudonyms: list[str]
    evidence: list[dict[str, Any]]
    status: str = "open"
    #: Whether ``--enforce`` may act on it. Not for a chain of requests that
    #: are each harmless on its own: the decomposition monitor flags more
    #: professionals than attackers on the development seeds (docs/offline.md,
    #: "Quality"), so its cases are for a reviewer, never an automatic restriction.
    enforceable: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "category": self.category,
            "severity": self.severity,
            "score": self.score,
            "subject": self.subject,
            "users": self.pseudonyms,
            "status": self.status,
            "enforceable": self.enforceable,
            "evidence": self.evidence,
        }


@dataclass
class Finding:
    user: str
    pseudonym: str
    label: str
    category: str
    score: float
    case_id: str
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return "f-" + self.case_id.removeprefix("case-") + "-" + self.pseudonym[2:10]

    def as_dict(self) -> dict[str, Any]:
        return {
            "user": self.pseudonym,
            "label": self.label,
            "category": self.category,
            "score": self.score,
            "case_id": self.case_id,
            "evidence": self.evidence,
        }


def window_key(since: datetime | None, until: datetime | None) -> str:
    return f"{since.isoformat() if since else '-'}/{until.isoformat() if until else '-'}"


def case_id(kind: str, subject: str, window: str) -> str:
    digest = hashlib.sha256(f"{kind}\n{subject}\n{window}".encode()).hexdigest()
    return f"case-{digest[:24]}"


def severity(score: float, category: str, *, bump: bool = False) -> str:
    level = 0 if score < 0.6 else 1 if score < 0.75 else 2 if score < 0.9 else 3
    if bump or category in GRAVE:
        level += 1
    return SEVERITIES[min(level, len(SEVERITIES) - 1)]


def build(results: list[UserResult], groups: list[CoordGroup], pseudo: Pseudonymizer,
          window: str, planted: Sequence[PlantedGroup] = ()) -> tuple[list[Case], list[Finding]]:
    cases: list[Case] = []
    found: list[Finding] = []
    for r in results:
        p = pseudo(r.user)
        if r.malicious:
            chains = [c for c in r.chains if c.flagged]
            best = max(chains, key=lambda c: (c.cumulative, c.rows)) if chains else None
            # one case per user, scored by its strongest signal
            score, category, bump = 0.0, "harm", best is not None
            if r.risk.flagged:
                score = round(min(1.0, r.risk.score / (r.risk.score + 1.0)), 4)
                category = r.risk.category or "harm"
            if best is not None and best.cumulative >= score:
                score, category = best.cumulative, best.category
            if r.attempts.flagged and r.attempts.score >= score:
                score, category = r.attempts.score, r.attempts.category or "jailbreak"
                bump = False
            evidence = (r.evidence.get("attempts", []) + r.evidence.get("chain", [])
                        + r.evidence.get("risk", []))
            cid = case_id("abuse", r.user, window)
            cases.append(Case(cid, "abuse", "malicious", category,
                              severity(score, category, bump=bump), score, p,
                              [r.user], [p], evidence,
                              # a chain alone: for review, not for --enforce
                              enforceable=r.risk.flagged or r.attempts.flagged))
            found.append(Finding(r.user, p, "malicious", category, score, cid, evidence))
        if r.at_risk:
            t = r.trajectory
            cid = case_id("wellbeing", r.user, window)
            evidence = r.evidence.get("trajectory", [])
            cases.append(Case(cid, "wellbeing", "at_risk", t.category,
                              severity(t.peak, "", bump=t.slope_per_day > 0), t.peak, p,
                              [r.user], [p], evidence))
            found.append(Finding(r.user, p, "at_risk", t.category, t.peak, cid, evidence))
    for g in groups:
        cid = case_id("coordination", g.id, window)
        pseudonyms = [pseudo(u) for u in g.users]
        evidence = [
            {"user": pseudo(u), "message_ids": list(ids),
             "why": f"near-duplicate of requests from {len(g.users) - 1} other account(s) "
                    f"({', '.join(g.how)})"}
            for u, ids in g.message_ids.items()
        ]
        # Mundane-looking members: a group starts medium and grows with its size.
        score = round(min(0.85, 0.55 + 0.05 * len(g.users)), 4)
        cases.append(Case(cid, "coordination", "coordinated", g.category,
                          severity(score, g.category), score, g.id, list(g.users),
                          pseudonyms, evidence))
        for u, pu, ev in zip(g.users, pseudonyms, evidence, strict=True):
            found.append(Finding(u, pu, "coordinated", g.category, score, cid, [ev]))
    for pg in planted:
        cases.append(_injection_case(pg, pseudo, window))
    cases.sort(key=lambda c: (-SEVERITIES.index(c.severity), -c.score, c.id))
    found.sort(key=lambda f: (f.label, -f.score, f.pseudonym))
    return cases, found


def _injection_case(p: PlantedGroup, pseudo: Pseudonymizer, window: str) -> Case:
    users = p.users
    pseudonyms = [pseudo(u) for u in users]
    when = (f"{p.first_seen:%Y-%m-%d %H:%M} to {p.last_seen:%Y-%m-%d %H:%M} UTC"
            if p.first_seen and p.last_seen else "")
    evidence: list[dict[str, Any]] = [{
        "why": f"planted instructions ({p.family or 'rule'}): '{p.excerpt}'"
               + (f" and {p.wordings - 1} other wording(s) pointing to "
                  f"{', '.join(p.targets[:5])}" if p.wordings > 1 else "")
               + f" in tool results read by the agents of {len(users)} accounts, "
               f"{p.reads} time(s), {when}; "
               f"{p.blocked} blocked, {p.reads - p.blocked} flagged and answered; "
               f"{p.followed} answer(s) repeated where it points",
    }]
    evidence += [{"user": pu, "exchange_ids": p.exchange_ids[u][:20],
                  "message_ids": p.message_ids.get(u, [])[:20],
                  "why": f"their agent read it {len(p.exchange_ids[u])} time(s)"}
                 for u, pu in zip(users, pseudonyms, strict=True)]
    # As a coordination group: medium, growing with the accounts reached.
    score = round(min(0.85, 0.55 + 0.05 * len(users)), 4)
    return Case(case_id("injection", p.id, window), "injection", "injected", "jailbreak",
                severity(score, "jailbreak"), score, p.id, users, pseudonyms, evidence)


def _upsert(table: sa.Table, dialect: str, rows: list[dict[str, Any]], keep: set[str]) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)
    update = {c: stmt.excluded[c] for c in rows[0] if c not in keep}
    return stmt.on_conflict_do_update(index_elements=["id"], set_=update)


def write(store: Store, cases: list[Case], found: list[Finding], run_id: str,
          since: datetime | None, until: datetime | None) -> dict[str, str]:
    """Upsert cases and findings; returns each case's current status
    (a reviewer may have changed it since the last run)."""
    now = utcnow()
    case_rows = [{
        "id": c.id, "kind": c.kind, "label": c.label, "category": c.category,
        "severity": c.severity, "score": c.score, "subject": c.subject, "user_ids": c.users,
        "evidence": c.evidence, "status": "open", "window_start": since, "window_end": until,
        "first_seen": now, "updated_at": now, "run_id": run_id, "enforceable": c.enforceable,
    } for c in cases]
    finding_rows = [{
        "id": f.id, "user_id": f.user, "pseudonym": f.pseudonym, "label": f.label,
        "category": f.category, "score": f.score, "case_id": f.case_id,
        "evidence": f.evidence, "window_start": since, "window_end": until,
        "updated_at": now, "run_id": run_id,
    } for f in found]
    with store.engine.begin() as conn:
        if case_rows:
            conn.execute(_upsert(cases_table, store.dialect, case_rows,
                                 {"id", "status", "first_seen"}), case_rows)
        if finding_rows:
            conn.execute(_upsert(findings_table, store.dialect, finding_rows, {"id"}),
                         finding_rows)
        ids = [c.id for c in cases]
        statuses: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            for cid, status in conn.execute(
                sa.select(cases_table.c.id, cases_table.c.status)
                .where(cases_table.c.id.in_(ids[start:start + 500]))
            ):
                statuses[cid] = status
    for c in cases:
        c.status = statuses.get(c.id, c.status)
    return statuses
