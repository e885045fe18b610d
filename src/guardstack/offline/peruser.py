"""Everything analysis does for one user, as one pure function.

Both engines call :func:`analyze_users` on the same chunks of users (the
local engine in a loop, the Ray engine inside ``map_batches``), so they give
the same findings by construction. Its result holds only plain data (ids, scores, reasons), never
message text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from guardstack import crisis_language
from guardstack.offline import decomposition, risk, trajectories
from guardstack.offline.attempts import Attempts, find_attempts
from guardstack.offline.corpus import LABELS, UserHistory
from guardstack.offline.decomposition import ScoreTexts
from guardstack.offline.settings import AnalysisSettings


@dataclass
class UserResult:
    user: str
    messages: int
    risk: risk.Risk
    chains: list[decomposition.ChainResult]
    trajectory: trajectories.Trajectory
    attempts: Attempts
    #: What a per-message filter alone would do: any request at or above flag_score.
    baseline_flagged: bool
    #: Evidence per finding kind ("risk", "attempts", "chain", "trajectory"):
    #: plain dicts.
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def malicious(self) -> bool:
        return self.risk.flagged or self.attempts.flagged or any(c.flagged for c in self.chains)

    @property
    def at_risk(self) -> bool:
        return self.trajectory.flagged


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _message(history: UserHistory, i: int, why: str) -> dict[str, Any]:
    row = history.scores[i]
    top = 1 + int(np.argmax(row[1:]))
    return {
        "message_id": int(history.ids[i]),
        "ts": _iso(float(history.ts[i])),
        "harm": round(float(row[0]), 4),
        "category": LABELS[top],
        "category_score": round(float(row[top]), 4),
        "why": why,
    }


def analyze_user(history: UserHistory, now: float, settings: AnalysisSettings,
                 score_texts: ScoreTexts) -> UserResult:
    full = history
    history = history.tail(settings.max_messages_per_user)
    user_risk = risk.user_risk(full, now, settings)
    chains = decomposition.judge(history, settings, score_texts)
    traj = trajectories.trajectory(history, settings)
    tries = find_attempts(history, settings)
    baseline = bool(len(full) and float(full.scores.max()) >= settings.flag_score)
    result = UserResult(full.user, len(full), user_risk, chains, traj, tries, baseline)

    if user_risk.flagged:
        result.evidence["risk"] = [
            _message(full, i, f"harm above floor {settings.risk_floor:g}, "
                              f"decayed contribution {c:.3f}")
            for i, c in user_risk.top
        ]
    if tries.flagged:
        result.evidence["attempts"] = [
            _message(history, i, f"jailbreak attempt {n} of {len(tries.rows)}: "
                                 f"{', '.join(t.replace('_', ' ') for t in used)} around a "
                                 f"request scored {float(history.scores[i, 0]):.2f}")
            for n, (i, used) in enumerate(zip(tries.rows, tries.tactics, strict=True), 1)
        ][-20:]
    flagged = [c for c in chains if c.flagged]
    if flagged:
        best = max(flagged, key=lambda c: (c.cumulative, c.uplift, c.rows))
        why = (f"step of a {best.how} group of {len(best.rows)} requests judged together: "
               f"cumulative {best.category} harm {best.cumulative:.2f} vs highest single "
               f"{best.max_single:.2f}")
        result.evidence["chain"] = [_message(history, i, why) for i in best.rows]
    if traj.flagged:
        trend = ("rising" if traj.slope_per_day > 0 else
                 "falling" if traj.slope_per_day < 0 else "flat")
        if traj.span_days >= 1:
            trend += f" ({traj.slope_per_day:+.3f}/day)"
        why = (f"crisis signal in {traj.signal_sessions} of {traj.sessions} sessions, "
               f"{trend}")
        result.evidence["trajectory"] = [
            _message(history, i, why + _in_own_words(traj.stated.get(i)))
            for i in traj.rows[-20:]
        ]
    return result


def _in_own_words(said: crisis_language.Pattern | None) -> str:
    return f"; states {said.kind} ideation ('{said.name}')" if said else ""


#: Users analysed together; both engines cut the same chunks, so the
#: classifier sees the same batches and scores are bit-identical.
CHUNK = 32


def analyze_users(histories: Sequence[UserHistory], now: float, settings: AnalysisSettings,
                  score_texts: ScoreTexts) -> list[UserResult]:
    """:func:`analyze_user` for several users, their groups scored in one
    classifier call (bigger batches run faster than one call per user)."""
    texts: dict[str, None] = {}
    for h in histories:
        tail = h.tail(settings.max_messages_per_user)
        for g in decomposition.candidate_groups(tail, settings):
            texts[decomposition.joined_text(tail, g.rows)] = None
    unique = list(texts)
    scored = dict(zip(unique, score_texts(unique), strict=True)) if unique else {}

    def lookup(batch: Sequence[str]) -> list[dict[str, float]]:
        return [scored[t] for t in batch]

    return [analyze_user(h, now, settings, lookup) for h in histories]


def chunks(histories: Sequence[UserHistory]) -> list[list[UserHistory]]:
    return [list(histories[i : i + CHUNK]) for i in range(0, len(histories), CHUNK)]
