"""The classifier as analysis sees it: texts in, (scores, embedding) out, in batches.

Wraps :class:`guardstack.guard.Guard` (``detect_batch``: raw per-category
probabilities and the unit embedding). A detector error leaves a message
unscored (empty scores, no embedding) rather than stopping a run; callers
count them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from guardstack.classifiers.base import Detection, Subject
from guardstack.verdict import Status


@dataclass(frozen=True, slots=True)
class Scored:
    scores: dict[str, float]
    embedding: np.ndarray | None
    ok: bool
    detection: Detection


class Scorer:
    """Scores texts with the guard's detector (loaded once, on first use)."""

    def __init__(self, guard: object | None = None, batch_size: int = 64) -> None:
        self._guard = guard
        self.batch_size = batch_size

    @property
    def guard(self) -> object:
        if self._guard is None:
            from guardstack.guard import Guard

            self._guard = Guard()
        return self._guard

    def score(
        self,
        texts: Sequence[str],
        roles: Sequence[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Scored]:
        out: list[Scored] = []
        guard = self.guard
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            chunk_roles = roles[start : start + self.batch_size] if roles else None
            subjects = [
                Subject(
                    text=t,
                    role="response" if chunk_roles and chunk_roles[i] == "assistant" else "prompt",
                )
                for i, t in enumerate(chunk)
            ]
            for det in guard.detect_batch(subjects):  # type: ignore[attr-defined]
                ok = det.status is Status.OK
                emb = (
                    np.asarray(det.embedding, dtype=np.float32)
                    if ok and det.embedding is not None
                    else None
                )
                out.append(Scored(dict(det.scores) if ok else {}, emb, ok, det))
            if progress is not None:
                progress(len(chunk))
        return out
