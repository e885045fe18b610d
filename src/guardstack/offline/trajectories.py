"""Trajectories: a user sliding into crisis, across sessions.

Per session the crisis signal is the highest crisis score of its requests:
``max(self_harm, psychological_harm)`` from the classifier, or
``crisis_language`` where a request states suicidal ideation in the first
person (:mod:`guardstack.crisis_language`; the classifier scores such
statements near zero, because they ask for nothing). A user with at least
``crisis_min_sessions`` sessions at or above ``crisis_threshold`` goes to the
wellbeing queue (kind ``wellbeing``, label ``at_risk``), never the abuse
queue. The slope of the per-session signal over time (per day, least squares)
says whether it is escalating; a rising trajectory is reviewed first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from guardstack import crisis_language
from guardstack.offline.corpus import LABEL_INDEX, UserHistory
from guardstack.offline.settings import AnalysisSettings

DAY = 86400.0
CRISIS = ("self_harm", "psychological_harm")


@dataclass(frozen=True)
class Trajectory:
    flagged: bool
    signal_sessions: int
    sessions: int
    slope_per_day: float
    #: days between the first and the last session: below one (replayed or
    #: compressed traffic) the slope's sign means something, its size little
    span_days: float
    peak: float
    category: str
    rows: tuple[int, ...]  # requests carrying the signal
    #: request index -> the ideation it states in the user's own words
    stated: dict[int, crisis_language.Pattern]


def stated_ideation(history: UserHistory, settings: AnalysisSettings
                    ) -> dict[int, crisis_language.Pattern]:
    """Requests that state suicidal ideation in the first person, with the
    first pattern each states (none when ``crisis_language`` is 0)."""
    if settings.crisis_language <= 0:
        return {}
    out = {}
    for i, text in enumerate(history.texts):
        said = crisis_language.matches(text)
        if said:
            out[i] = said[0]
    return out


def crisis_scores(history: UserHistory, stated: Iterable[int] = (),
                  language: float = 0.0) -> np.ndarray:
    """Per request: the classifier's crisis score, raised to ``language`` for
    the ``stated`` requests."""
    if not len(history):
        return np.zeros(0)
    cols = [LABEL_INDEX[c] for c in CRISIS]
    out = history.scores[:, cols].max(axis=1)
    for i in stated:
        out[i] = max(out[i], language)
    return out


def trajectory(history: UserHistory, settings: AnalysisSettings) -> Trajectory:
    stated = stated_ideation(history, settings)
    crisis = crisis_scores(history, stated, settings.crisis_language)
    per_session: dict[str, tuple[float, float]] = {}  # session -> (start ts, max signal)
    for i, session in enumerate(history.sessions):
        start, peak = per_session.get(session, (float(history.ts[i]), 0.0))
        per_session[session] = (min(start, float(history.ts[i])), max(peak, float(crisis[i])))
    points = sorted(per_session.values())
    signal = sum(1 for _, v in points if v >= settings.crisis_threshold)
    slope = 0.0
    span = 0.0
    if len(points) >= 2:
        x = np.array([p[0] for p in points]) / DAY
        y = np.array([p[1] for p in points])
        span = float(np.ptp(x))
        if span > 0:
            slope = float(np.polyfit(x - x[0], y, 1)[0])
    rows = tuple(int(i) for i in np.flatnonzero(crisis >= settings.crisis_threshold))
    cols = history.scores[:, [LABEL_INDEX[c] for c in CRISIS]]
    category = CRISIS[int(np.argmax(cols.sum(axis=0)))] if len(history) else CRISIS[0]
    if any(i in stated for i in rows):
        category = "self_harm"  # the user said so in their own words
    return Trajectory(
        flagged=signal >= settings.crisis_min_sessions,
        signal_sessions=signal,
        sessions=len(points),
        slope_per_day=round(slope, 5),
        span_days=round(span, 3),
        peak=round(float(crisis.max()) if len(crisis) else 0.0, 4),
        category=category,
        rows=rows,
        stated=stated,
    )
