"""What each dashboard page reads from the store.

Aggregates (overview, topics) never return message text. Functions that
return raw text a person wrote (a case's evidence, a user's history, search
results) write an audit-log entry in the same transaction as the read, so no
reviewer reads raw history without a record.

Every query here is bounded (a window, a page, a limit) and backed by an
index from migrations 0001-0003, so a page's cost does not grow with the
size of the store; ``benchmarks/bench_dashboard.py`` measures them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from guardstack import framing
from guardstack.dashboard import rollup
from guardstack.offline.pseudonym import Pseudonymizer
from guardstack.offline.settings import SEVERITIES
from guardstack.store import audit
from guardstack.store.accounts import AccountAction, Accounts
from guardstack.store.engine import Store
from guardstack.store.history import user_history
from guardstack.store.schema import (
    CASE_KINDS,
    CASE_STATUSES,
    account_states,
    analysis_runs,
    audit_log,
    cases,
    findings,
    messages,
    topic_clusters,
    traffic_rollup,
)

PAGE_SIZE = 50
#: Most of a user's messages the user page reads (the most recent).
USER_MESSAGES = 500
#: Messages of context shown around a case's evidence.
CONTEXT_LIMIT = 300
SEARCH_LIMIT = 100

def message_score(scores: dict[str, float] | None) -> float:
    """One number per message: the harm score, else the highest category."""
    if not scores:
        return 0.0
    if "harm" in scores:
        return float(scores["harm"])
    return float(max(scores.values()))


def jailbreak_tactics(text: str | None) -> list[str]:
    """The jailbreak tactics a user message uses, in words ("refusal
    suppression"), for the reviewer: the reading layer 3's attempts
    monitor and the gateway make (:func:`guardstack.framing.tactics`)."""
    return [t.replace("_", " ") for t in framing.adversarial_tactics(text or "")]


def top_scores(scores: dict[str, float] | None, n: int = 4) -> list[tuple[str, float]]:
    if not scores:
        return []
    return sorted(((k, float(v)) for k, v in scores.items()), key=lambda kv: -kv[1])[:n]


# -- overview ------------------------------------------------------------------------

@dataclass
class Overview:
    window_start: datetime | None
    window_end: datetime | None
    days: list[str] = field(default_factory=list)
    #: role -> decision -> per-day counts (aligned with ``days``).
    traffic: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    #: category -> per-day counts of flagged or blocked messages.
    categories: dict[str, list[int]] = field(default_factory=dict)
    #: kind -> severity -> open cases.
    open_cases: dict[str, dict[str, int]] = field(default_factory=dict)
    open_total: int = 0
    largest: list[dict[str, Any]] = field(default_factory=list)
    rising: list[dict[str, Any]] = field(default_factory=list)

    def chart_data(self) -> dict[str, Any]:
        """Only counts and names: safe to hand to the browser as JSON."""
        rates: dict[str, dict[str, list[float]]] = {}
        for role, by_decision in self.traffic.items():
            totals = [sum(v[i] for v in by_decision.values()) for i in range(len(self.days))]
            rates[role] = {
                d: [round(c / t, 4) if t else 0.0 for c, t in zip(counts, totals, strict=True)]
                for d, counts in by_decision.items() if d != "allow"}
        return {"days": self.days, "traffic": self.traffic, "rates": rates,
                "categories": self.categories}


def overview(store: Store, days: int = 14, k_anonymity: int = 5) -> Overview:
    rollup.refresh(store)  # counts only what arrived since the last view
    with store.engine.connect() as conn:
        end = conn.execute(sa.select(sa.func.max(messages.c.ts))).scalar()
        out = Overview(None, None)
        out.open_cases = {k: {s: 0 for s in reversed(SEVERITIES)} for k in CASE_KINDS}
        for kind, severity, n in conn.execute(
                sa.select(cases.c.kind, cases.c.severity, sa.func.count())
                .where(cases.c.status == "open").group_by(cases.c.kind, cases.c.severity)):
            out.open_cases.setdefault(kind, {})[severity] = n
            out.open_total += n
        if end is not None:
            # The window ends at the newest message, not the clock: a store of
            # last month's logs still shows its traffic.
            first = conn.execute(sa.select(sa.func.min(messages.c.ts))).scalar()
            start = max(end - timedelta(days=days - 1), first).replace(
                hour=0, minute=0, second=0, microsecond=0)
            out.window_start, out.window_end = start, end
            out.days = [(start + timedelta(days=i)).strftime("%Y-%m-%d")
                        for i in range((end - start).days + 1)]
            index = {d: i for i, d in enumerate(out.days)}
            for d, role, decision, category, n in conn.execute(
                    sa.select(traffic_rollup.c.day, traffic_rollup.c.role,
                              traffic_rollup.c.decision, traffic_rollup.c.category,
                              traffic_rollup.c.n)
                    .where(traffic_rollup.c.day >= out.days[0])):
                if d not in index:
                    continue
                if category:
                    out.categories.setdefault(category, [0] * len(out.days))[index[d]] += n
                else:
                    out.traffic.setdefault(role, {}).setdefault(
                        decision, [0] * len(out.days))[index[d]] += n
        clusters = latest_clusters(conn, k_anonymity)
    out.largest = sorted(clusters, key=lambda c: (-c["messages"], c["id"]))[:5]
    out.rising = sorted((c for c in clusters if c["flag_rate_recent"] > c["flag_rate_earlier"]),
                        key=lambda c: (not c["rising"], -(c["flag_rate_recent"]
                                                          - c["flag_rate_earlier"]), c["id"]))[:5]
    return out


# -- topics --------------------------------------------------------------------------

def latest_clusters(conn: sa.Connection, k_anonymity: int) -> list[dict[str, Any]]:
    """The newest run's clusters with at least ``k_anonymity`` users (and at
    least the minimum they were computed with)."""
    run = conn.execute(sa.select(topic_clusters.c.run_id)
                       .order_by(topic_clusters.c.created_at.desc()).limit(1)).scalar()
    if run is None:
        return []
    rows = conn.execute(
        sa.select(topic_clusters)
        .where(topic_clusters.c.run_id == run,
               topic_clusters.c.users >= k_anonymity,
               topic_clusters.c.users >= topic_clusters.c.min_users)
        .order_by(topic_clusters.c.messages.desc(), topic_clusters.c.id)).mappings().all()
    return [dict(r) for r in rows]


def topics(store: Store, k_anonymity: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    with store.engine.connect() as conn:
        clusters = latest_clusters(conn, k_anonymity)
        run = conn.execute(
            sa.select(analysis_runs).where(analysis_runs.c.status == "done")
            .order_by(analysis_runs.c.started_at.desc()).limit(1)).mappings().first()
    return clusters, dict(run) if run is not None else None


# -- queue ---------------------------------------------------------------------------

@dataclass
class QueuePage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    status: str
    kind: str | None
    counts: dict[str, int]


def queue(store: Store, *, status: str = "open", kind: str | None = None, page: int = 1,
          per_page: int = PAGE_SIZE) -> QueuePage:
    if status not in CASE_STATUSES:
        raise ValueError(f"unknown status {status!r}")
    if kind is not None and kind not in CASE_KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    where = [cases.c.status == status]
    if kind is not None:
        where.append(cases.c.kind == kind)
    cols = [cases.c.id, cases.c.kind, cases.c.label, cases.c.category, cases.c.severity,
            cases.c.score, cases.c.subject, cases.c.status, cases.c.first_seen,
            cases.c.updated_at, cases.c.reviewer]
    with store.engine.connect() as conn:
        # Per severity, most severe first, each bucket read in index order
        # (status, severity, score, id): a page costs its own rows, not a
        # sort of every open case.
        sizes: dict[str, int] = dict(conn.execute(
            sa.select(cases.c.severity, sa.func.count()).where(*where)
            .group_by(cases.c.severity)).all())
        total = sum(sizes.values())
        pages = max(1, -(-total // per_page))
        page = min(max(1, page), pages)
        skip, want = (page - 1) * per_page, per_page
        order = [s for s in reversed(SEVERITIES) if s in sizes]
        order += sorted(s for s in sizes if s not in SEVERITIES)
        rows: list[Any] = []
        for severity in order:
            if want == 0:
                break
            if skip >= sizes[severity]:
                skip -= sizes[severity]
                continue
            got = conn.execute(
                sa.select(*cols).where(*where, cases.c.severity == severity)
                .order_by(cases.c.score.desc(), cases.c.id.desc())
                .limit(want).offset(skip)).mappings().all()
            rows.extend(got)
            want -= len(got)
            skip = 0
        counts: dict[str, int] = dict(conn.execute(sa.select(cases.c.status, sa.func.count())
                                                   .group_by(cases.c.status)).all())
    return QueuePage([dict(r) for r in rows], total, page, pages, status, kind,
                     {s: counts.get(s, 0) for s in CASE_STATUSES})


# -- one case ------------------------------------------------------------------------

@dataclass
class CaseView:
    case: dict[str, Any]
    evidence: list[dict[str, Any]]
    #: conversation id -> its messages, each with ``evidence``/``chain`` marks.
    conversations: list[tuple[str, list[dict[str, Any]]]]
    users: list[dict[str, Any]]
    actions: list[AccountAction]


def _evidence_ids(evidence: list[Any]) -> list[int]:
    ids: list[int] = []
    for item in evidence or ():
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("message_id"), int):
            ids.append(item["message_id"])
        ids.extend(i for i in item.get("message_ids") or () if isinstance(i, int))
    return ids


def case_users(store: Store, case_id: str) -> list[str] | None:
    """The raw user ids of a case (None: no such case)."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(cases.c.user_ids).where(cases.c.id == case_id)).first()
    return None if row is None else [str(u) for u in row.user_ids or ()]


def case_view(store: Store, case_id: str, *, actor: str) -> CaseView | None:
    """A case with its evidence in context; the read is audited."""
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(cases).where(cases.c.id == case_id)).mappings().first()
        if row is None:
            return None
        case = dict(row)
        evidence = [e for e in case["evidence"] or () if isinstance(e, dict)]
        ids = _evidence_ids(evidence)
        chain_ids = {e["message_id"] for e in evidence if isinstance(e.get("message_id"), int)
                     and str(e.get("why", "")).startswith("step of")}
        why = {e["message_id"]: str(e.get("why", "")) for e in evidence
               if isinstance(e.get("message_id"), int)}
        evidence_rows = conn.execute(
            sa.select(messages.c.id, messages.c.conversation_id, messages.c.user_id)
            .where(messages.c.id.in_(ids[:1000]))).all() if ids else []
        convs = sorted({r.conversation_id for r in evidence_rows if r.conversation_id})
        users = list(case["user_ids"] or [])
        context: list[Any] = []
        if convs:
            context = list(conn.execute(
                sa.select(messages.c.id, messages.c.ts, messages.c.role, messages.c.content,
                          messages.c.user_id, messages.c.conversation_id, messages.c.decision,
                          messages.c.scores)
                .where(messages.c.conversation_id.in_(convs[:100]),
                       messages.c.user_id.in_(users) if users else sa.true())
                .order_by(messages.c.conversation_id, messages.c.ts, messages.c.id)
                .limit(CONTEXT_LIMIT)).mappings())
        shown = {r["id"] for r in context}
        missing = [i for i in ids if i not in shown]
        if missing:  # evidence without a conversation id still shows
            context += list(conn.execute(
                sa.select(messages.c.id, messages.c.ts, messages.c.role, messages.c.content,
                          messages.c.user_id, messages.c.conversation_id, messages.c.decision,
                          messages.c.scores).where(messages.c.id.in_(missing[:500]))).mappings())
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for m in context:
            item = dict(m)
            item["evidence"] = item["id"] in why or item["id"] in ids
            item["chain"] = item["id"] in chain_ids
            item["why"] = why.get(item["id"], "")
            item["score"] = message_score(item["scores"])
            item["top"] = top_scores(item["scores"])
            item["tactics"] = jailbreak_tactics(item["content"]) if item["role"] == "user" \
                else []
            grouped[item["conversation_id"] or "(no conversation)"].append(item)
        states = dict(conn.execute(sa.select(account_states.c.user_id, account_states.c.state)
                                   .where(account_states.c.user_id.in_(users))).all()) \
            if users else {}
        pseudonyms = dict(conn.execute(
            sa.select(findings.c.user_id, findings.c.pseudonym)
            .where(findings.c.case_id == case_id)).all())
        audit.record(conn, actor=actor, action="case.view", subject_user=users[0] if
                     len(users) == 1 else None,
                     detail={"case_id": case_id, "users": users, "messages": len(context)})
    accounts = Accounts(store, cache_ttl=0)
    if any(u not in pseudonyms for u in users):
        # Accounts without a finding (an injection case's attacked accounts)
        # still show the pseudonym layer 3's output names them by.
        pseudo = Pseudonymizer.for_store(store)
        pseudonyms.update({u: pseudo(u) for u in users if u not in pseudonyms})
    actions = [a for u in users[:50] for a in accounts.history(u)]
    actions.sort(key=lambda a: a.id)
    return CaseView(
        case, evidence, sorted(grouped.items()),
        [{"user": u, "pseudonym": pseudonyms.get(u, ""), "state": states.get(u, "none")}
         for u in users], actions)


# -- one user ------------------------------------------------------------------------

@dataclass
class UserView:
    user: str
    pseudonym: str | None
    state: str
    sessions: list[dict[str, Any]]
    messages: list[Any]
    findings: list[dict[str, Any]]
    actions: list[AccountAction]
    total_messages: int


def resolve_user(store: Store, key: str) -> tuple[str, str | None] | None:
    """(raw id, pseudonym) for a pseudonym or a raw id known to the store."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(findings.c.user_id, findings.c.pseudonym)
                           .where(findings.c.pseudonym == key).limit(1)).first()
        if row is not None:
            return row.user_id, row.pseudonym
        pseudonym = conn.execute(sa.select(findings.c.pseudonym)
                                 .where(findings.c.user_id == key).limit(1)).scalar()
        known = pseudonym is not None or conn.execute(
            sa.select(messages.c.id).where(messages.c.user_id == key).limit(1)).first() \
            is not None or conn.execute(
            sa.select(account_states.c.user_id).where(account_states.c.user_id == key)
        ).first() is not None
    return (key, pseudonym) if known else None


def user_view(store: Store, user: str, pseudonym: str | None, *, actor: str,
              reason: str) -> UserView:
    with store.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(messages)
                             .where(messages.c.user_id == user)).scalar_one()
        # The ts of the USER_MESSAGES-th newest message: read from there on.
        since = conn.execute(sa.select(messages.c.ts).where(messages.c.user_id == user)
                             .order_by(messages.c.ts.desc()).limit(1)
                             .offset(USER_MESSAGES - 1)).scalar()
        found = [dict(r) for r in conn.execute(
            sa.select(findings).where(findings.c.user_id == user)
            .order_by(findings.c.score.desc())).mappings()]
        state = conn.execute(sa.select(account_states.c.state)
                             .where(account_states.c.user_id == user)).scalar() or "none"
    # The one reader of raw history: it writes the audit entry itself.
    history = user_history(store, user, actor=actor, reason=reason, since=since,
                           limit=USER_MESSAGES)
    sessions: dict[str, dict[str, Any]] = {}
    for m in history:
        key = m.conversation_id or m.exchange_id
        s = sessions.setdefault(key, {"id": key, "start": m.ts, "messages": 0, "max_score": 0.0,
                                      "flagged": 0})
        s["messages"] += 1
        score = message_score(m.scores)
        s["max_score"] = max(s["max_score"], score)
        s["flagged"] += m.decision in ("flag", "block")
    return UserView(user, pseudonym, state,
                    sorted(sessions.values(), key=lambda s: s["start"]), history, found,
                    Accounts(store, cache_ttl=0).history(user), total)


# -- search --------------------------------------------------------------------------

@dataclass
class SearchResult:
    rows: list[dict[str, Any]]
    truncated: bool


def search(store: Store, *, actor: str, text: str = "", user: str = "", decision: str = "",
           days: int = 7, exchange: str = "") -> SearchResult:
    """Messages matching all given filters in the last ``days`` of traffic,
    newest first, at most ``SEARCH_LIMIT``; audited (raw text is shown).
    ``exchange``: the request id a client was given (``x-request-id``); it
    names one exchange whatever its age, so ``days`` does not apply."""
    where: list[Any] = []
    if exchange:
        where.append(messages.c.exchange_id == exchange)
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(messages.c.content.ilike(f"%{escaped}%", escape="\\"))
    if user:
        where.append(messages.c.user_id == user)
    if decision:
        where.append(messages.c.decision == decision)
    with store.engine.begin() as conn:
        end = conn.execute(sa.select(sa.func.max(messages.c.ts))).scalar()
        if end is not None and not exchange:
            where.append(messages.c.ts >= end - timedelta(days=days))
        rows = [dict(r) for r in conn.execute(
            sa.select(messages.c.id, messages.c.ts, messages.c.role, messages.c.content,
                      messages.c.user_id, messages.c.conversation_id, messages.c.decision,
                      messages.c.scores)
            .where(*where).order_by(messages.c.ts.desc()).limit(SEARCH_LIMIT + 1)).mappings()]
        audit.record(conn, actor=actor, action="search", detail={
            "text": text[:200], "user": user, "decision": decision, "days": days,
            "exchange": exchange,
            "returned": min(len(rows), SEARCH_LIMIT)})
    for r in rows:
        r["score"] = message_score(r["scores"])
    return SearchResult(rows[:SEARCH_LIMIT], len(rows) > SEARCH_LIMIT)


# -- audit log -----------------------------------------------------------------------

def audit_page(store: Store, *, page: int = 1, actor: str = "", action: str = "",
               per_page: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], bool]:
    query = sa.select(audit_log).order_by(audit_log.c.ts.desc(), audit_log.c.id.desc())
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        query = query.where(audit_log.c.action == action)
    page = max(1, page)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            query.limit(per_page + 1).offset((page - 1) * per_page)).mappings()]
    return rows[:per_page], len(rows) > per_page
