"""Coordination: groups of accounts sending near-duplicate or templated requests.

Each account may look mundane alone; together they are a campaign. Two
requests from any users are linked when

* their character 5-gram shingles have an estimated Jaccard similarity of at
  least ``coord_jaccard`` (MinHash, 64 permutations, found through 16 LSH
  bands of 4 rows), catching templates with swapped fillers; or
* they share at least ``ENTITY_MIN`` entity tokens (capitalised words not
  opening a sentence, and numbers) used by few accounts, making up
  ``ENTITY_JACCARD`` of their entity tokens: translations of one template
  keep their names, places and figures ("Jean Morel", "Saint-Aubin", "70"); or
* their embeddings have cosine >= ``coord_cosine`` (candidates found by
  random-hyperplane LSH) and they also share half their entity tokens or
  ``PARAPHRASE_JACCARD`` of their shingles, catching paraphrases. The second
  condition keeps a collapsed or English-only embedding space from chaining
  unrelated requests together.

Linked requests form clusters (union-find); links count only between requests
sent within ``coord_window_days`` of each other. A cluster is a coordinated
group when at least ``coord_min_users`` accounts each sent
``coord_min_messages`` of its requests (repeats count), each of them directly
linked to at least ``coord_min_users - 1`` of the others (a k-core, so a chain
of loosely similar requests is not a group), and at least ``coord_min_users``
of them share a rare entity token (campaigns name their target), and the
bulk of their copies (10th to 90th percentile of times) falls within
``coord_burst_days`` (accounts act in concert). Requests
shorter than ``coord_min_chars`` are never considered ("hello", "thanks"),
and a cluster spanning more than ``coord_max_share`` of active users is
ordinary traffic (everyone asks it), not a campaign. Cost is near-linear: LSH buckets larger than
``MAX_BUCKET`` are skipped as ultra-common.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from guardstack.offline.corpus import LABELS, Corpus
from guardstack.offline.settings import AnalysisSettings

PERMUTATIONS = 64
BANDS = 16
ROWS = PERMUTATIONS // BANDS
SHINGLE = 5
_PRIME = np.uint64((1 << 61) - 1)
HYPERPLANES = 14
TABLES = 6
#: Buckets larger than this hold ultra-common text; skipped to bound cost.
MAX_BUCKET = 400
_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w[\w'-]*\w|\d", re.UNICODE)
_SENTENCE_END = frozenset(".!?:;\"«“")
ENTITY_MIN = 3
ENTITY_PERMS = 16
ENTITY_ROWS = 2
ENTITY_JACCARD = 0.5
#: Shingle similarity an embedding match also needs when it shares no names.
PARAPHRASE_JACCARD = 0.3


@dataclass(frozen=True)
class CoordGroup:
    id: str
    users: tuple[str, ...]
    message_ids: dict[str, tuple[int, ...]]  # user -> its linked requests
    category: str
    score: float  # mean harm of the group's requests (context, not the trigger)
    how: tuple[str, ...]  # "shingles", "embedding"
    first_ts: float
    last_ts: float


def _entities(text: str) -> frozenset[str]:
    """Names and figures: capitalised words that do not open a sentence, numbers."""
    out = set()
    for m in _WORD.finditer(text):
        word = m.group()
        before = text[: m.start()].rstrip()
        opens = not before or before[-1] in _SENTENCE_END
        if any(ch.isdigit() for ch in word) or (word[0].isupper() and not opens):
            out.add(word.lower())
    return frozenset(out)


def _normalize(text: str) -> str:
    return _WS.sub(" ", text.lower()).strip()


def _minhash(text: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    data = text.encode("utf-8")
    if len(data) < SHINGLE:
        data = data.ljust(SHINGLE)
    shingles = {zlib.crc32(data[i : i + SHINGLE]) for i in range(len(data) - SHINGLE + 1)}
    x = np.fromiter(shingles, dtype=np.uint64, count=len(shingles))
    # (a*x + b) mod p on uint64 wraps; the wrapped value is still a fine hash.
    h = (np.outer(x, a) + b) % _PRIME
    return h.min(axis=0)


def _set_minhash(tokens: frozenset[str], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not tokens:
        return np.full(len(a), np.iinfo(np.uint64).max, dtype=np.uint64)
    x = np.fromiter((zlib.crc32(t.encode("utf-8")) for t in tokens), dtype=np.uint64,
                    count=len(tokens))
    return ((np.outer(x, a) + b) % _PRIME).min(axis=0)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def find_groups(corpus: Corpus, settings: AnalysisSettings) -> list[CoordGroup]:
    # Candidate requests: long enough to be specific; one per (user, text).
    owner: list[int] = []
    rows: list[tuple[int, int]] = []  # (user index, row index)
    texts: list[str] = []
    originals: list[str] = []
    # Repeats of one text by one user are linked once but all count.
    copies: list[list[int]] = []
    seen: dict[tuple[int, str], int] = {}
    for u, history in enumerate(corpus.users):
        for i, text in enumerate(history.texts):
            norm = _normalize(text)
            if len(norm) < settings.coord_min_chars:
                continue
            if (u, norm) in seen:
                copies[seen[(u, norm)]].append(i)
                continue
            seen[(u, norm)] = len(texts)
            copies.append([i])
            owner.append(u)
            rows.append((u, i))
            texts.append(norm)
            originals.append(text)
    n = len(texts)
    if n < 2:
        return []
    rng = np.random.default_rng(20251125)  # fixed: the same data gives the same groups
    a = rng.integers(1, int(_PRIME), size=PERMUTATIONS, dtype=np.uint64)
    b = rng.integers(0, int(_PRIME), size=PERMUTATIONS, dtype=np.uint64)
    sigs = np.stack([_minhash(t, a, b) for t in texts])
    tokens = [_entities(t) for t in originals]
    user_freq: dict[str, set[int]] = defaultdict(set)
    for i, toks in enumerate(tokens):
        for tok in toks:
            user_freq[tok].add(owner[i])
    rare_cap = max(settings.coord_max_share * len(corpus.users), settings.coord_min_users)
    rare = [frozenset(t for t in toks if len(user_freq[t]) <= rare_cap) for toks in tokens]
    uf = _UnionFind(n)
    how: dict[int, set[str]] = defaultdict(set)

    stamp = np.array([corpus.users[u].ts[i] for u, i in rows])
    window = settings.coord_window_days * 86400.0
    user_links: set[tuple[int, int]] = set()

    def link(members: list[int], verify: object, kind: str) -> None:
        if len(members) < 2 or len(members) > MAX_BUCKET:
            return
        for x_pos, i in enumerate(members):
            for j in members[x_pos + 1 :]:
                pair = (min(owner[i], owner[j]), max(owner[i], owner[j]))
                known = uf.find(i) == uf.find(j)
                if known and (owner[i] == owner[j] or pair in user_links):
                    continue
                # Accounts act in concert when their copies are close in time.
                if abs(stamp[i] - stamp[j]) > window:
                    continue
                if verify(i, j):  # type: ignore[operator]
                    uf.union(i, j)
                    how[i].add(kind)
                    how[j].add(kind)
                    if owner[i] != owner[j]:
                        user_links.add(pair)

    def jaccard_ok(i: int, j: int) -> bool:
        return float(np.mean(sigs[i] == sigs[j])) >= settings.coord_jaccard

    for band in range(BANDS):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        part = sigs[:, band * ROWS : (band + 1) * ROWS]
        for i in range(n):
            buckets[part[i].tobytes()].append(i)
        for members in buckets.values():
            link(members, jaccard_ok, "shingles")

    def entity_ok(i: int, j: int) -> bool:
        shared = len(rare[i] & rare[j])
        union = len(rare[i] | rare[j]) or 1
        return shared >= ENTITY_MIN and shared / union >= ENTITY_JACCARD

    # Candidates by MinHash LSH over the entity sets (near-linear, unlike
    # pairing every two requests that share a name).
    ent_sigs = np.stack([_set_minhash(r, a[:ENTITY_PERMS], b[:ENTITY_PERMS]) for r in rare])
    for band in range(ENTITY_PERMS // ENTITY_ROWS):
        buckets_t: dict[bytes, list[int]] = defaultdict(list)
        part = ent_sigs[:, band * ENTITY_ROWS : (band + 1) * ENTITY_ROWS]
        for i in range(n):
            if len(rare[i]) >= ENTITY_MIN:
                buckets_t[part[i].tobytes()].append(i)
        for members in buckets_t.values():
            link(members, entity_ok, "entities")

    emb = np.stack([corpus.users[u].embeddings[i] for u, i in rows])
    has = np.linalg.norm(emb, axis=1) > 0
    planes = rng.standard_normal((TABLES, HYPERPLANES, emb.shape[1] or 1)).astype(np.float32)

    def cosine_ok(i: int, j: int) -> bool:
        if not (has[i] and has[j]) or float(emb[i] @ emb[j]) < settings.coord_cosine:
            return False
        shared = len(rare[i] & rare[j])
        return (shared >= 1 and shared / (len(rare[i] | rare[j]) or 1) >= ENTITY_JACCARD) or \
            float(np.mean(sigs[i] == sigs[j])) >= PARAPHRASE_JACCARD

    if emb.shape[1]:
        weights = 1 << np.arange(HYPERPLANES, dtype=np.int64)
        for table in range(TABLES):
            codes = ((emb @ planes[table].T) > 0).astype(np.int64) @ weights
            buckets_e: dict[int, list[int]] = defaultdict(list)
            for k in np.flatnonzero(has).tolist():
                buckets_e[int(codes[k])].append(k)
            for members in buckets_e.values():
                link(members, cosine_ok, "embedding")

    clusters: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        clusters[uf.find(i)].append(i)
    active = len(corpus.users)
    cap = max(settings.coord_max_share * active, settings.coord_min_users)
    groups: list[CoordGroup] = []
    for members in clusters.values():
        by_user: dict[int, list[int]] = defaultdict(list)
        for i in members:
            by_user[owner[i]].append(i)
        if len(by_user) > cap:
            continue  # everyone asks this: ordinary traffic
        core = {u: m for u, m in by_user.items()
                if sum(len(copies[i]) for i in m) >= settings.coord_min_messages}
        # k-core: every member directly linked to at least coord_min_users - 1
        # others, so a chain of loosely similar requests (A~B~C~D) is no group.
        changed = True
        while changed and len(core) >= settings.coord_min_users:
            changed = False
            for u in sorted(core):
                degree = sum(1 for v in core if v != u and (min(u, v), max(u, v)) in user_links)
                if degree < settings.coord_min_users - 1:
                    del core[u]
                    changed = True
        if len(core) < settings.coord_min_users:
            continue
        # Specificity: a campaign names its target (a candidate, a product, a
        # bank, a town). Members must share a rare entity token; templates
        # everyone fills differently ("a budget version of <dish>") do not.
        holders: dict[str, set[int]] = defaultdict(set)
        for u, m in core.items():
            for i in m:
                for tok in rare[i]:
                    holders[tok].add(u)
        shared_entities = sorted(t for t, us in holders.items()
                                 if len(us) >= settings.coord_min_users)
        if not shared_entities:
            continue
        # Concert: the bulk of the group's copies (10th to 90th percentile of
        # their times) falls within coord_burst_days. Template questions that
        # many people ask over weeks are not a campaign.
        times = np.array([stamp[i] for m in core.values() for i in m])
        low, high = np.quantile(times, [0.1, 0.9])
        if high - low > settings.coord_burst_days * 86400.0:
            continue
        users = sorted(corpus.users[u].user for u in core)
        ids: dict[str, tuple[int, ...]] = {}
        scores = []
        stamps: list[float] = []
        kinds: set[str] = set()
        for u, m in core.items():
            history = corpus.users[u]
            idx = sorted(k for i in m for k in copies[i])
            ids[history.user] = tuple(int(history.ids[k]) for k in idx)
            scores.append(history.scores[idx])
            stamps.extend(float(history.ts[k]) for k in idx)
            for i in m:
                kinds |= how[i]
        allscores = np.concatenate(scores)
        category = LABELS[1 + int(np.argmax(allscores[:, 1:].mean(axis=0)))]
        key = hashlib.sha256("\n".join(users).encode()).hexdigest()[:16]
        groups.append(CoordGroup(
            id=f"grp-{key}", users=tuple(users), message_ids=dict(sorted(ids.items())),
            category=category, score=round(float(allscores[:, 0].mean()), 4),
            how=tuple(sorted(kinds)), first_ts=min(stamps), last_ts=max(stamps),
        ))
    groups.sort(key=lambda g: g.id)
    return groups
