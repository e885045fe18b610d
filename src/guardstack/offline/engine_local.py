"""The local engine: the per-user function over chunks of users, in this process."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from guardstack.offline.corpus import UserHistory
from guardstack.offline.peruser import UserResult, analyze_users, chunks
from guardstack.offline.scoring import Scorer
from guardstack.offline.settings import AnalysisSettings


def score_texts_with(scorer: Scorer) -> Callable[[Sequence[str]], list[dict[str, float]]]:
    def score(texts: Sequence[str]) -> list[dict[str, float]]:
        return [s.scores for s in scorer.score(list(texts))]

    return score


def run(histories: Sequence[UserHistory], now: float, settings: AnalysisSettings,
        scorer: Scorer, progress: Callable[[int], None] | None = None) -> list[UserResult]:
    score = score_texts_with(scorer)
    out: list[UserResult] = []
    for chunk in chunks(histories):
        out.extend(analyze_users(chunk, now, settings, score))
        if progress is not None:
            progress(len(chunk))
    return out
