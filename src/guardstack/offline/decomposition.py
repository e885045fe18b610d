"""Decomposition monitor: a harmful goal split into requests that are each
harmless, found by judging related requests *together*.

Per user, requests are grouped two ways, both bounded by ``chain_window_days``:

* by topic: leader clustering of embeddings (a request joins the most
  similar open group when cosine >= ``topic_similarity``), so unrelated
  questions interleaved with a chain do not break it up;
* the sensitive thread: requests whose own harm score is at least
  ``elevated_score``, in order, since the steps of a chain are often about
  different sub-topics (a drone, a crowd, a liquid) that only add up together.

Each group of at least ``chain_min_messages`` requests, at least one of them
at ``elevated_score`` or above, is judged as a whole,
as a lightweight sequential monitor does ("Monitoring Decomposition Attacks
in LLMs with Lightweight Sequential Monitors", 2025): its requests are
concatenated in order and scored by the classifier. A group is a chain when
that cumulative score reaches ``chain_threshold`` *and* exceeds the group's
highest single message by ``chain_uplift``: the whole is worse than its parts.
(Groups whose single messages already score high are the per-message filter's
and per-user risk's business.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from guardstack.offline.corpus import LABELS, UserHistory
from guardstack.offline.settings import AnalysisSettings

DAY = 86400.0
#: Most requests concatenated into one judged text (the most recent ones).
MAX_JOINED = 12

ScoreTexts = Callable[[Sequence[str]], list[dict[str, float]]]


@dataclass(frozen=True)
class Group:
    rows: tuple[int, ...]  # indices into the user's history, time order
    how: str  # "topic" or "thread"


@dataclass(frozen=True)
class ChainResult:
    rows: tuple[int, ...]
    how: str
    cumulative: float
    max_single: float
    mean_single: float
    category: str
    flagged: bool

    @property
    def uplift(self) -> float:
        return round(self.cumulative - self.max_single, 4)


def topic_groups(history: UserHistory, settings: AnalysisSettings) -> list[Group]:
    window = settings.chain_window_days * DAY
    emb = history.embeddings
    n = len(history)
    groups: list[list[int]] = []
    # Centroids and start times in arrays, one row per group: the open
    # groups' similarities are one matrix-vector product per request.
    centroids = np.zeros((max(n, 1), emb.shape[1] if emb.ndim == 2 else 0), dtype=emb.dtype)
    first = np.zeros(max(n, 1), dtype=np.float64)
    open_ids = np.zeros(0, dtype=np.int64)
    for i in range(n):
        t = float(history.ts[i])
        open_ids = open_ids[t - first[open_ids] <= window]
        best = -1
        v = emb[i]
        if len(open_ids) and float(v @ v) > 0:
            sims = centroids[open_ids] @ v
            j = int(np.argmax(sims))
            if sims[j] >= settings.topic_similarity:
                best = int(open_ids[j])
        if best < 0:
            g = len(groups)
            groups.append([i])
            centroids[g] = v
            first[g] = t
            open_ids = np.append(open_ids, g)
        else:
            groups[best].append(i)
            c = emb[groups[best]].sum(axis=0)
            norm = float(np.linalg.norm(c))
            centroids[best] = c / norm if norm > 0 else c
    return [Group(tuple(g), "topic") for g in groups if len(g) >= settings.chain_min_messages]


def thread_groups(history: UserHistory, settings: AnalysisSettings) -> list[Group]:
    window = settings.chain_window_days * DAY
    elevated = np.flatnonzero(history.scores[:, 0] >= settings.elevated_score)
    out: list[Group] = []
    current: list[int] = []
    for i in elevated:
        if current and history.ts[i] - history.ts[current[0]] > window:
            # Slide: keep the part of the thread still inside the window.
            current = [j for j in current if history.ts[i] - history.ts[j] <= window]
        current.append(int(i))
        if len(current) >= settings.chain_min_messages:
            out.append(Group(tuple(current), "thread"))
    # Keep only maximal windows (each is a superset of the ones before it in
    # the same stretch); a long thread yields one group per window position.
    maximal: list[Group] = []
    for g in out:
        if maximal and set(maximal[-1].rows) <= set(g.rows):
            maximal[-1] = g
        else:
            maximal.append(g)
    return maximal


def candidate_groups(history: UserHistory, settings: AnalysisSettings) -> list[Group]:
    seen: set[tuple[int, ...]] = set()
    groups: list[Group] = []
    elevated = history.scores[:, 0] >= settings.elevated_score
    for g in thread_groups(history, settings) + topic_groups(history, settings):
        rows = g.rows[-MAX_JOINED:]
        if not elevated[list(rows)].any():
            # No step is even slightly sensitive: nothing for the classifier
            # to add up, and most everyday topic groups end here (bounded work).
            continue
        if rows in seen:
            continue
        seen.add(rows)
        groups.append(Group(rows, g.how))
    harm = history.scores[:, 0]
    # Bound the work: judge the groups whose requests lean most sensitive.
    groups.sort(key=lambda g: (-float(harm[list(g.rows)].mean()), g.rows))
    return groups[: settings.chain_max_groups]


def joined_text(history: UserHistory, rows: Sequence[int]) -> str:
    return "\n".join(history.texts[i] for i in rows)


def judge(history: UserHistory, settings: AnalysisSettings,
          score_texts: ScoreTexts) -> list[ChainResult]:
    groups = candidate_groups(history, settings)
    if not groups:
        return []
    cumulative = score_texts([joined_text(history, g.rows) for g in groups])
    results = []
    for g, scores in zip(groups, cumulative, strict=True):
        single = history.scores[list(g.rows), 0]
        cum = round(float(scores.get("harm", 0.0)), 4)
        cats = {c: scores.get(c, 0.0) for c in LABELS[1:]}
        category = max(cats, key=lambda c: (cats[c], c)) if cats else "harm"
        max_single = round(float(single.max()), 4)
        flagged = cum >= settings.chain_threshold and cum - max_single >= settings.chain_uplift
        results.append(ChainResult(g.rows, g.how, cum, max_single,
                                   round(float(single.mean()), 4), category, flagged))
    return results
