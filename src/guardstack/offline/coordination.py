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
of them share a rare name (campaigns name their target; shared figures alone
are everyday arithmetic), and the
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
from collections.abc import Callable
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
_DIGIT = re.compile(r"\d")
_SENTENCE_END = frozenset(".!?:;\"«“")
ENTITY_MIN = 3
ENTITY_PERMS = 16
ENTITY_ROWS = 2
ENTITY_JACCARD = 0.5
#: Shingle similarity an embedding match also needs when it shares no names.
PARAPHRASE_JACCARD = 0.3
#: LSH buckets up to this size are paired all together; larger ones one by
#: one as a similarity matrix.
_SMALL_BUCKET = 16


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
        if _DIGIT.search(word) is None:
            if not word[0].isupper():
                continue
            # the last non-space character before the word (linear, unlike
            # rstrip-ing the whole prefix for every word of a long text)
            k = m.start() - 1
            while k >= 0 and text[k].isspace():
                k -= 1
            if k < 0 or text[k] in _SENTENCE_END:
                continue  # opens a sentence
        out.add(word.lower())
    return frozenset(out)


PairCheck = Callable[[np.ndarray, np.ndarray], np.ndarray]
BlockCheck = Callable[[np.ndarray], np.ndarray]


def _candidate_pairs(keys: np.ndarray, rows: np.ndarray, near_pairs: PairCheck,
                     near_block: BlockCheck) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of ``rows`` (ascending ids) that share a
    key row (an LSH bucket) and pass a vectorized, state-free necessary
    condition of linking: ``near_pairs(I, J)`` (a mask over pairs) for small
    buckets, ``near_block(ids)`` (an m x m matrix) for large ones. Buckets
    larger than ``MAX_BUCKET`` hold ultra-common text and are skipped.

    The pairs come in the order a loop over buckets (by first member, as
    filling a dict in row order gives) and over each bucket's pairs visits
    them, so linking them one by one gives what checking every pair in
    Python did, without a Python step per pair or per row."""
    n = len(rows)
    if n < 2:
        return []
    _, inverse = np.unique(keys.reshape(n, -1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse)
    order = np.argsort(inverse, kind="stable")  # each bucket contiguous, ascending
    size = counts[inverse[order]]
    order = order[(size >= 2) & (size <= MAX_BUCKET)]
    bucket = inverse[order]
    small = counts[bucket] <= _SMALL_BUCKET
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    # Small buckets together: the pairs d apart in sorted order, d = 1, 2, ...
    s_order, s_bucket = order[small], bucket[small]
    for d in range(1, _SMALL_BUCKET):
        same = s_bucket[:-d] == s_bucket[d:]
        if not same.any():
            break
        i, j = rows[s_order[:-d][same]], rows[s_order[d:][same]]
        keep = near_pairs(i, j)
        found_i.append(i[keep])
        found_j.append(j[keep])
    # Large buckets one by one, as a matrix.
    l_order, l_bucket = order[~small], bucket[~small]
    cuts = np.flatnonzero(np.diff(l_bucket)) + 1
    for members in np.split(l_order, cuts) if len(l_order) else ():
        ids = rows[members]
        x, y = np.nonzero(np.triu(near_block(ids), 1))
        found_i.append(ids[x])
        found_j.append(ids[y])
    if not found_i:
        return []
    ii, jj = np.concatenate(found_i), np.concatenate(found_j)
    first = np.full(len(counts), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, inverse, rows)
    pos = np.searchsorted(rows, ii)
    visit = np.lexsort((jj, ii, first[inverse[pos]]))
    return list(zip(ii[visit].tolist(), jj[visit].tolist(), strict=True))


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

    def close_in_time(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return np.abs(stamp[i] - stamp[j]) <= window

    def close_in_time_block(ids: np.ndarray) -> np.ndarray:
        return np.abs(stamp[ids][:, None] - stamp[ids][None, :]) <= window

    def link(pairs: list[tuple[int, int]], verify: Callable[[int, int], bool],
             kind: str) -> None:
        for i, j in pairs:
            pair = (min(owner[i], owner[j]), max(owner[i], owner[j]))
            known = uf.find(i) == uf.find(j)
            if known and (owner[i] == owner[j] or pair in user_links):
                continue
            # Accounts act in concert when their copies are close in time.
            if abs(stamp[i] - stamp[j]) > window:
                continue
            if verify(i, j):
                uf.union(i, j)
                how[i].add(kind)
                how[j].add(kind)
                if owner[i] != owner[j]:
                    user_links.add(pair)

    def jaccard_ok(i: int, j: int) -> bool:
        return float(np.mean(sigs[i] == sigs[j])) >= settings.coord_jaccard

    every = np.arange(n)

    def similar_shingles(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        same = (sigs[i] == sigs[j]).mean(axis=1) >= settings.coord_jaccard
        return same & close_in_time(i, j)

    def similar_shingles_block(ids: np.ndarray) -> np.ndarray:
        s_ = sigs[ids]
        same = (s_[:, None, :] == s_[None, :, :]).mean(axis=2) >= settings.coord_jaccard
        return same & close_in_time_block(ids)

    for band in range(BANDS):
        link(_candidate_pairs(sigs[:, band * ROWS : (band + 1) * ROWS], every,
                              similar_shingles, similar_shingles_block),
             jaccard_ok, "shingles")

    def entity_ok(i: int, j: int) -> bool:
        shared = len(rare[i] & rare[j])
        union = len(rare[i] | rare[j]) or 1
        return shared >= ENTITY_MIN and shared / union >= ENTITY_JACCARD

    # Candidates by MinHash LSH over the entity sets (near-linear, unlike
    # pairing every two requests that share a name).
    ent_sigs = np.stack([_set_minhash(r, a[:ENTITY_PERMS], b[:ENTITY_PERMS]) for r in rare])
    sizes = np.array([len(r) for r in rare])
    named = np.flatnonzero(sizes >= ENTITY_MIN)

    # shared / union >= ENTITY_JACCARD needs min size / max size >= it too
    def comparable(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        lo, hi = np.minimum(sizes[i], sizes[j]), np.maximum(sizes[i], sizes[j])
        return (lo >= ENTITY_JACCARD * hi) & close_in_time(i, j)

    def comparable_block(ids: np.ndarray) -> np.ndarray:
        z = sizes[ids]
        lo, hi = np.minimum.outer(z, z), np.maximum.outer(z, z)
        return (lo >= ENTITY_JACCARD * hi) & close_in_time_block(ids)

    for band in range(ENTITY_PERMS // ENTITY_ROWS):
        part = ent_sigs[named, band * ENTITY_ROWS : (band + 1) * ENTITY_ROWS]
        link(_candidate_pairs(part, named, comparable, comparable_block), entity_ok, "entities")

    emb = np.stack([corpus.users[u].embeddings[i] for u, i in rows])
    has = np.linalg.norm(emb, axis=1) > 0
    planes = rng.standard_normal((TABLES, HYPERPLANES, emb.shape[1] or 1)).astype(np.float32)

    def cosine_ok(i: int, j: int) -> bool:
        if not (has[i] and has[j]) or float(emb[i] @ emb[j]) < settings.coord_cosine:
            return False
        shared = len(rare[i] & rare[j])
        return (shared >= 1 and shared / (len(rare[i] | rare[j]) or 1) >= ENTITY_JACCARD) or \
            float(np.mean(sigs[i] == sigs[j])) >= PARAPHRASE_JACCARD

    # a hair looser than cosine_ok: BLAS may round a product differently
    cosine_floor = settings.coord_cosine - 1e-5

    def close_embeddings(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        near = np.einsum("ij,ij->i", emb[i], emb[j]) >= cosine_floor
        return near & close_in_time(i, j)

    def close_embeddings_block(ids: np.ndarray) -> np.ndarray:
        e = emb[ids]
        return ((e @ e.T) >= cosine_floor) & close_in_time_block(ids)

    if emb.shape[1]:
        weights = 1 << np.arange(HYPERPLANES, dtype=np.int64)
        embedded = np.flatnonzero(has)
        for table in range(TABLES):
            codes = ((emb[embedded] @ planes[table].T) > 0).astype(np.int64) @ weights
            link(_candidate_pairs(codes, embedded, close_embeddings, close_embeddings_block),
                 cosine_ok, "embedding")

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
        # bank, a town). Members must share a rare *name*; templates everyone
        # fills differently ("a budget version of <dish>") do not, and shared
        # figures alone ("if I invest £5,000 at 5%...") are everyday
        # arithmetic that many people happen to ask with the same numbers.
        holders: dict[str, set[int]] = defaultdict(set)
        for u, m in core.items():
            for i in m:
                for tok in rare[i]:
                    if _DIGIT.search(tok) is None:
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
