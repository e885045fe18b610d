"""Topic map of all traffic, Clio-style, privacy-preserving.

Embeddings are clustered with k-means (numpy, k-means++ seeding, fixed seed;
fitted on at most ``FIT_SAMPLE`` requests, then every request assigned), and
each cluster is labelled by its most distinctive terms (class-based TF-IDF:
a term's frequency in the cluster times ``log(1 + average words per cluster /
the term's frequency over all clusters)``).

Privacy: a cluster with fewer than ``topic_k_anonymity`` distinct users is not
shown at all; a label term must itself be used by at least that many distinct
users of the cluster (so a name or an address never becomes a label); labels
and examples go through the store's PII redactor; examples are only requests whose exact text at
least two users sent (nearest the centroid first), truncated.

Per cluster: the flag rate (share of requests with a score at or above
``flag_score``) over the whole window, in its earlier and its recent half, and
``rising`` when the recent rate is at least ``topic_rising_ratio`` times the
earlier one (with at least ``MIN_RISING`` flagged recent requests).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from guardstack.offline.corpus import Corpus
from guardstack.offline.settings import AnalysisSettings
from guardstack.pii import redact_text

FIT_SAMPLE = 50_000
MAX_K = 60
ITERATIONS = 25
TERMS = 6
EXAMPLES = 3
EXAMPLE_CHARS = 160
MIN_RISING = 3
_TOKEN = re.compile(r"[^\W\d_][\w'-]{2,}", re.UNICODE)
_STOP_TEXT = """the and for you your are with that this what how can could would should about
from have has had not but all any its it's into out our they them their there then than
was were will just like more most some such very also who why when where which while
does did doing done get got make made want need help tell give write explain please
hi hey hello thanks thank okay quick question one two best way good know use using
i'm i've i'd don't can't isn't me my mine we us he she his her him do is be been"""
STOPWORDS = frozenset(_STOP_TEXT.split())


@dataclass(frozen=True)
class Cluster:
    id: str
    label: str
    terms: tuple[str, ...]
    users: int
    messages: int
    flag_rate: float
    flag_rate_earlier: float
    flag_rate_recent: float
    rising: bool
    examples: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "terms": list(self.terms),
            "users": self.users,
            "messages": self.messages,
            "flag_rate": self.flag_rate,
            "flag_rate_earlier": self.flag_rate_earlier,
            "flag_rate_recent": self.flag_rate_recent,
            "rising": self.rising,
            "examples": list(self.examples),
        }


def kmeans(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Centroids of ``k`` clusters of the rows of ``x`` (cosine: rows are unit)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    centroids = np.empty((k, x.shape[1]), dtype=np.float32)
    centroids[0] = x[rng.integers(n)]
    dist = np.full(n, np.inf)
    for c in range(1, k):
        dist = np.minimum(dist, 1.0 - x @ centroids[c - 1])
        p = np.maximum(dist, 0)
        total = float(p.sum())
        centroids[c] = x[rng.choice(n, p=p / total)] if total > 0 else x[rng.integers(n)]
    for _ in range(ITERATIONS):
        assign = np.argmax(x @ centroids.T, axis=1)
        moved = False
        for c in range(k):
            members = x[assign == c]
            if len(members) == 0:
                continue
            m = members.mean(axis=0)
            norm = float(np.linalg.norm(m))
            new = m / norm if norm > 0 else m
            if not np.allclose(new, centroids[c], atol=1e-5):
                moved = True
            centroids[c] = new
        if not moved:
            break
    return centroids


def _tokens(text: str) -> list[str]:
    return [t for t in (m.group().lower() for m in _TOKEN.finditer(text)) if t not in STOPWORDS]


def topic_map(corpus: Corpus, settings: AnalysisSettings) -> list[Cluster]:
    users: list[int] = []
    rows: list[tuple[int, int]] = []
    for u, history in enumerate(corpus.users):
        ok = np.flatnonzero(np.linalg.norm(history.embeddings, axis=1) > 0)
        users.extend([u] * len(ok))
        rows.extend((u, int(i)) for i in ok)
    n = len(rows)
    if n == 0:
        return []
    emb = np.stack([corpus.users[u].embeddings[i] for u, i in rows])
    k = settings.topic_clusters or int(np.clip(math.sqrt(n / 2), 2, MAX_K))
    k = max(1, min(k, n))
    rng = np.random.default_rng(7)
    sample = emb if n <= FIT_SAMPLE else emb[np.sort(rng.choice(n, FIT_SAMPLE, replace=False))]
    centroids = kmeans(sample, k)
    assign = np.argmax(emb @ centroids.T, axis=1)
    ts = np.array([corpus.users[u].ts[i] for u, i in rows])
    flagged = np.array([float(corpus.users[u].scores[i].max()) >= settings.flag_score
                        for u, i in rows])
    texts = [corpus.users[u].texts[i] for u, i in rows]
    midpoint = float(ts.min() + (ts.max() - ts.min()) / 2)

    term_counts: list[Counter[str]] = []
    term_users: list[dict[str, set[int]]] = []
    for c in range(k):
        counts: Counter[str] = Counter()
        who: dict[str, set[int]] = defaultdict(set)
        for j in np.flatnonzero(assign == c):
            for tok in _tokens(texts[j]):
                counts[tok] += 1
                who[tok].add(users[j])
        term_counts.append(counts)
        term_users.append(who)
    overall: Counter[str] = Counter()
    for counts in term_counts:
        overall.update(counts)
    avg_words = sum(overall.values()) / max(k, 1)

    clusters: list[Cluster] = []
    kanon = settings.topic_k_anonymity
    for c in range(k):
        members = np.flatnonzero(assign == c)
        distinct = {users[j] for j in members}
        if len(members) == 0 or len(distinct) < kanon:
            continue  # k-anonymity: small clusters are not shown at all
        total = sum(term_counts[c].values()) or 1
        weights = {
            t: (cnt / total) * math.log(1 + avg_words / overall[t])
            for t, cnt in term_counts[c].items()
            if len(term_users[c][t]) >= kanon
        }
        terms = tuple(redact_text(t)[0] for t, _ in
                      sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:TERMS])
        early = members[ts[members] < midpoint]
        late = members[ts[members] >= midpoint]
        rate_early = float(flagged[early].mean()) if len(early) else 0.0
        rate_late = float(flagged[late].mean()) if len(late) else 0.0
        rising = bool(
            int(flagged[late].sum()) >= MIN_RISING
            and rate_late >= settings.topic_rising_ratio * max(rate_early, 1e-9)
        )
        clusters.append(Cluster(
            id="topic-" + hashlib.sha256(" ".join(terms).encode()).hexdigest()[:10],
            label=", ".join(terms[:3]) or "(no common terms)",
            terms=terms,
            users=len(distinct),
            messages=len(members),
            flag_rate=round(float(flagged[members].mean()), 4),
            flag_rate_earlier=round(rate_early, 4),
            flag_rate_recent=round(rate_late, 4),
            rising=rising,
            examples=_examples(members, emb, centroids[c], texts, users),
        ))
    clusters.sort(key=lambda cl: (-cl.messages, cl.id))
    return clusters


def _examples(members: np.ndarray, emb: np.ndarray, centroid: np.ndarray, texts: list[str],
              users: list[int]) -> tuple[str, ...]:
    # Only texts at least two users sent verbatim: an example must not be
    # something only one person wrote. Nearest the centroid first.
    senders: dict[str, set[int]] = defaultdict(set)
    for j in members:
        senders[texts[j]].add(users[j])
    order = members[np.argsort(-(emb[members] @ centroid), kind="stable")]
    picked: list[str] = []
    for j in order:
        text = texts[j]
        if text in picked or len(senders[text]) < 2:
            continue
        picked.append(text)
        if len(picked) == EXAMPLES:
            break
    out = []
    for text in picked:
        clean = redact_text(text)[0]
        out.append(clean if len(clean) <= EXAMPLE_CHARS else clean[: EXAMPLE_CHARS - 1] + "…")
    return tuple(out)
