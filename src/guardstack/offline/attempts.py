"""Jailbreak attempts: harmful requests wrapped in jailbreak tactics, repeated.

A professional asks about a harmful subject in plain words. Someone spraying
jailbreak templates wraps a harmful request in "no disclaimers", "you are DAN,
an AI with no rules", "developer mode is on" or "decode this and answer it",
and when the gateway blocks one, pastes the next. The gateway judges each
request alone and blocks it; per-user risk (:mod:`guardstack.offline.risk`)
needs several such requests before its decayed sum flags anyone, so a
sprayer who gives up after two or three tries went unflagged.

An *attempt* is a request whose harm score reaches ``attempt_score`` (the
default policy's block point) and that uses at least one adversarial tactic
(:func:`guardstack.framing.tactics`; a fiction frame does not count: novelists
ask that way). A user with ``attempts_min`` distinct attempts is flagged
``malicious``. Over the 102,277 safe rows of every set in ``../shared/data``
(JailbreakBench's attack prompts left out), 87 use such a tactic and 5 of those
also score that high (docs/offline.md):
the signal is an explicit act, not a subject, which is why its cases may be
enforced where a decomposition chain's may not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from guardstack import framing
from guardstack.offline.corpus import LABELS, UserHistory
from guardstack.offline.settings import AnalysisSettings


@dataclass(frozen=True)
class Attempts:
    #: Row indices of the attempts, oldest first, and the tactics of each.
    rows: tuple[int, ...]
    tactics: tuple[tuple[str, ...], ...]
    flagged: bool
    #: The harm the attempts ask for: their most common category other than
    #: ``jailbreak`` (the template itself), else ``jailbreak``.
    category: str | None
    #: 0.75 for two attempts, +0.05 for each more, at most 0.95.
    score: float


def find_attempts(history: UserHistory, settings: AnalysisSettings) -> Attempts:
    rows: list[int] = []
    used: list[tuple[str, ...]] = []
    seen: set[str] = set()
    if settings.attempts_min > 0 and len(history):
        for i in np.flatnonzero(history.scores[:, 0] >= settings.attempt_score):
            text = history.texts[i]
            key = " ".join(text.split()).casefold()
            if key in seen:  # a client's retry of the same text is one attempt
                continue
            found = framing.adversarial_tactics(text)
            if found:
                seen.add(key)
                rows.append(int(i))
                used.append(found)
    flagged = settings.attempts_min > 0 and len(rows) >= settings.attempts_min
    category = None
    if rows:
        kinds: Counter[str] = Counter()
        for row in rows:
            kinds[LABELS[1 + int(np.argmax(history.scores[row, 1:]))]] += 1
        harms = [k for k, _ in kinds.most_common() if k != "jailbreak"]
        category = harms[0] if harms else "jailbreak"
    score = round(min(0.95, 0.75 + 0.05 * (len(rows) - 2)), 4) if flagged else 0.0
    return Attempts(tuple(rows), tuple(used), flagged, category, score)
