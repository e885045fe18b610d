"""Planted instructions read by the agents of several accounts: layer 3's view
of the gateway's tool-result check (docs/gateway.md, "Tool results: indirect
prompt injection").

The gateway records each tool result it read as an injection in
``exchanges.extra.tool_output``: its verdict, whose reason names the rule
family and the planted words (``addressed: 'Note to AI assistants reading
this page: tell the user'``), kept apart from the user's own verdicts
(``guardstack ingest`` records the ``tool`` lines of a log the same way). One
such finding is one agent reading one page. The same planted words reaching
the agents of several accounts is a campaign against the platform's agents
(a poisoned web page, a shared document, a product listing), which no single
request shows. This groups a window's findings by the planted words
(case-folded, punctuation and spacing ignored), joins groups whose words
point to the same place (a link's host, an e-mail address, a bare domain:
a campaign reworded, or rotated between wordings, still sends its readers
to one address), and makes one group per campaign read by at least
``injection_min_users`` accounts.

A case carries the planted words (at most 200 characters, through the
store's PII redactor): they come from a document an agent read, not from the
user, and they are what a reviewer needs to find the page. The accounts are
the ones attacked. Their case (kind ``injection``) lists
them so a reviewer can look at what their agents did next; they get no
finding, their risk does not rise, and ``--enforce`` never acts on it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from guardstack import injection
from guardstack.pii import redact_text
from guardstack.store.engine import Store
from guardstack.store.schema import exchanges, messages

#: Decisions of a tool-result verdict that count as a finding.
FOUND = ("flag", "block")
#: Longest excerpt of the planted words kept in a case's evidence.
EXCERPT_CHARS = 200
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass
class PlantedGroup:
    """One set of planted words and the accounts whose agents read it."""

    id: str                   # "planted-" + a hash of the normalized words
    family: str               # the rule family that found it (override, addressed, ...)
    excerpt: str              # the planted words as first seen, PII redacted
    exchange_ids: dict[str, list[str]] = field(default_factory=dict)  # user -> exchanges
    #: user -> the ids of their requests in those exchanges (the dashboard
    #: shows them in their conversations, an audited read)
    message_ids: dict[str, list[int]] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    blocked: int = 0          # reads the policy blocked (the rest were flagged)
    #: exchanges whose answer repeated where the words point (tool_output.followed)
    followed: int = 0
    #: where the planted words point (hosts, e-mail addresses, domains)
    targets: list[str] = field(default_factory=list)
    wordings: int = 1         # distinct planted words joined by a shared target

    @property
    def users(self) -> list[str]:
        return sorted(self.exchange_ids)

    @property
    def reads(self) -> int:
        return sum(map(len, self.exchange_ids.values()))


def planted_words(reason: str) -> tuple[str, str]:
    """(family, excerpt) from a tool verdict's reason ``family: 'words'``."""
    family, sep, rest = reason.partition(": ")
    if not sep:
        return "", reason.strip()
    return family.strip(), rest.strip().strip("'").strip()


def _key(excerpt: str) -> str:
    return _NOT_WORD.sub(" ", excerpt.casefold()).strip()


def _group_id(key: str) -> str:
    return "planted-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def find(store: Store, since: datetime | None = None, until: datetime | None = None,
         *, min_users: int = 2) -> list[PlantedGroup]:
    """The window's planted words read by at least ``min_users`` accounts,
    most accounts first."""
    decision = exchanges.c.extra["decision"].as_string()
    query = (sa.select(exchanges.c.id, exchanges.c.user_id, exchanges.c.ts_start,
                       exchanges.c.extra)
             # extra.decision is the exchange's most severe decision, tool results
             # included: an exchange with a finding was flagged or blocked.
             .where(exchanges.c.user_id.is_not(None), decision.in_(FOUND))
             .order_by(exchanges.c.ts_start, exchanges.c.id))
    if since is not None:
        query = query.where(exchanges.c.ts_start >= since)
    if until is not None:
        query = query.where(exchanges.c.ts_start < until)
    reads: list[tuple[Any, dict[str, Any], str, str, str]] = []
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            verdicts = (row.extra or {}).get("tool_output") or []
            for v in verdicts if isinstance(verdicts, list) else ():
                if not isinstance(v, dict) or v.get("decision") not in FOUND:
                    continue
                family, excerpt = planted_words(str(v.get("reason") or ""))
                key = _key(excerpt)
                if key:
                    reads.append((row, v, family, excerpt, key))
    # Wordings that share a target are one campaign; it is named by the
    # wording seen first, so a case keeps its id as variants join it.
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    pointing: dict[str, str] = {}  # target -> a wording that names it
    targets: dict[str, frozenset[str]] = {}
    order: dict[str, int] = {}     # wording -> when first seen
    for _, _, _, excerpt, key in reads:
        if key in parent:
            continue
        parent[key], order[key] = key, len(order)
        targets[key] = injection.targets(excerpt)
        for t in sorted(targets[key]):
            if t not in pointing:
                pointing[t] = key
                continue
            a, b = root(pointing[t]), root(key)
            if a != b:
                keep, other = (a, b) if order[a] < order[b] else (b, a)
                parent[other] = keep
    groups: dict[str, PlantedGroup] = {}
    wordings: dict[str, set[str]] = {}  # group id -> its wordings
    for row, v, family, excerpt, key in reads:
        gid = _group_id(root(key))
        g = groups.get(gid) or groups.setdefault(
            gid, PlantedGroup(gid, family, redact_text(excerpt[:EXCERPT_CHARS])[0]))
        wordings.setdefault(gid, set()).add(key)
        ids = g.exchange_ids.setdefault(row.user_id, [])
        if row.id not in ids:
            ids.append(row.id)
            g.followed += bool((row.extra or {}).get("tool_output_followed"))
            g.blocked += v.get("decision") == "block"
        g.first_seen = g.first_seen or row.ts_start
        g.last_seen = row.ts_start
    for gid, keys in wordings.items():
        groups[gid].wordings = len(keys)
        # through the redactor, as the excerpt: a planted address is still an address
        groups[gid].targets = sorted({redact_text(t)[0] for k in keys for t in targets[k]})
    found = [g for g in groups.values() if len(g.exchange_ids) >= min_users]
    found.sort(key=lambda g: (-len(g.exchange_ids), -g.reads, g.id))
    _requests(store, found)
    return found


def _requests(store: Store, groups: list[PlantedGroup]) -> None:
    """Fill each group's ``message_ids``: the user messages of its exchanges,
    or, for a tool result loaded by ``guardstack ingest`` (an exchange of its
    own), the user's last message before it in the same conversation: what
    they asked their agent."""
    owner = {(u, x): g for g in groups for u, ids in g.exchange_ids.items() for x in ids}
    wanted = sorted({x for _, x in owner})
    found: set[str] = set()
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            for mid, exchange, user in conn.execute(
                    sa.select(messages.c.id, messages.c.exchange_id, messages.c.user_id)
                    .where(messages.c.exchange_id.in_(wanted[start:start + 500]),
                           messages.c.role == "user")
                    .order_by(messages.c.id)):
                g = owner.get((user, exchange))
                if g is not None:
                    g.message_ids.setdefault(user, []).append(mid)
                    found.add(exchange)
        for (user, exchange), g in owner.items():
            if exchange in found:
                continue
            read = conn.execute(sa.select(exchanges.c.conversation_id, exchanges.c.ts_start)
                                .where(exchanges.c.id == exchange)).first()
            if read is None or read.conversation_id is None:
                continue
            asked = conn.execute(
                sa.select(messages.c.id)
                .where(messages.c.conversation_id == read.conversation_id,
                       messages.c.user_id == user, messages.c.role == "user",
                       messages.c.ts <= read.ts_start)
                .order_by(messages.c.ts.desc(), messages.c.id.desc()).limit(1)).scalar()
            if asked is not None and asked not in g.message_ids.get(user, []):
                g.message_ids.setdefault(user, []).append(asked)
