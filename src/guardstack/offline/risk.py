"""Per-user risk over time: harm above a floor, summed with exponential decay.

A message adds ``max(0, harm - floor)`` weighted by ``0.5 ** (age / half_life)``
(age measured back from the end of the window). Persistent low-grade signals
accumulate across sessions; one odd question adds at most ``1 - floor``,
less than the threshold, and ``risk_min_messages`` makes sure of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from guardstack.offline.corpus import LABELS, UserHistory
from guardstack.offline.settings import AnalysisSettings

DAY = 86400.0


@dataclass(frozen=True)
class Risk:
    score: float
    contributing: int
    flagged: bool
    category: str | None
    #: (row index, contribution) of the strongest contributions, largest first.
    top: tuple[tuple[int, float], ...]


def user_risk(history: UserHistory, now: float, settings: AnalysisSettings) -> Risk:
    harm = history.scores[:, 0].astype(np.float64)
    age_days = np.maximum(0.0, (now - history.ts) / DAY)
    weight = 0.5 ** (age_days / max(settings.half_life_days, 1e-9))
    excess = np.maximum(0.0, harm - settings.risk_floor)
    contrib = excess * weight
    score = float(contrib.sum())
    contributing = int((excess > 0).sum())
    flagged = score >= settings.risk_threshold and contributing >= settings.risk_min_messages
    category = None
    if contributing:
        cats = history.scores[excess > 0, 1:]
        category = LABELS[1 + int(np.argmax(cats.mean(axis=0)))]
    order = np.argsort(-contrib, kind="stable")[:10]
    top = tuple((int(i), round(float(contrib[i]), 4)) for i in order if contrib[i] > 0)
    return Risk(round(score, 4), contributing, flagged, category, top)
