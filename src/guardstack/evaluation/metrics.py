"""Classification and speed metrics, as pure functions of labels, scores and timings.

The positive class is *unsafe*. A metric whose denominator is zero (precision
with nothing predicted positive, recall with no unsafe items, ...) is
``None``, never NaN: the report prints ``n/a`` and the JSON ``null``.
Only numpy is used, so evaluation needs no scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Confusion:
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    @classmethod
    def from_predictions(cls, labels: Iterable[bool], predicted: Iterable[bool]) -> Confusion:
        tp = fp = tn = fn = 0
        for unsafe, positive in zip(labels, predicted, strict=True):
            if unsafe:
                tp, fn = (tp + 1, fn) if positive else (tp, fn + 1)
            else:
                fp, tn = (fp + 1, tn) if positive else (fp, tn + 1)
        return cls(tp, fp, tn, fn)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def n_unsafe(self) -> int:
        return self.tp + self.fn

    @property
    def n_safe(self) -> int:
        return self.fp + self.tn

    @property
    def precision(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def fpr(self) -> float | None:
        """False-positive rate: safe items predicted unsafe, over all safe items."""
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def f1(self) -> float | None:
        """2TP / (2TP + FP + FN): the harmonic mean of precision and recall where
        both exist, 0.0 when unsafe items exist but none was caught (precision
        may be undefined then), and undefined without unsafe items, like recall."""
        if self.tp + self.fn == 0:
            return None
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def average_precision(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the precision-recall curve as average precision.

    ``AP = sum_k (R_k - R_{k-1}) * P_k`` over the distinct score thresholds,
    highest first; tied scores form one threshold (as scikit-learn's
    ``average_precision_score`` does). ``labels`` are truthy for unsafe.
    ``None`` when there is no positive.
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape} vs {s.shape}")
    n_pos = int(y.sum())
    if n_pos == 0:
        return None
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # Last index of each run of equal scores: one threshold per distinct score.
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tp = np.cumsum(y)[last]
    predicted = last + 1
    precision = tp / predicted
    recall = tp / n_pos
    gains = np.diff(np.r_[0.0, recall])
    return float(np.sum(gains * precision))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation), ``None`` for no values."""
    if len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def throughput(items: int, seconds: float) -> float | None:
    """Items per second; ``None`` when nothing was timed."""
    if items == 0 or seconds <= 0:
        return None
    return items / seconds


def per_category_recall(
    categories: Sequence[Iterable[str]],
    labels: Sequence[int],
    predicted: Sequence[int],
) -> dict[str, dict[str, float | int | None]]:
    """Recall of the unsafe items of each category: ``{cat: {"n", "recall"}}``.

    ``categories[i]`` are the (already mapped) categories of item ``i``; an
    item counts toward every category it carries. Safe items are ignored:
    recall is about the unsafe ones.
    """
    hits: dict[str, list[int]] = {}
    for cats, unsafe, positive in zip(categories, labels, predicted, strict=True):
        if not unsafe:
            continue
        for cat in set(cats):
            counts = hits.setdefault(cat, [0, 0])
            counts[0] += 1
            counts[1] += int(positive)
    return {
        cat: {"n": n, "recall": _ratio(tp, n)} for cat, (n, tp) in sorted(hits.items())
    }


def f1_from(precision: float | None, recall: float | None) -> float | None:
    """Harmonic mean of precision and recall (a cross-check for :attr:`Confusion.f1`)."""
    if precision is None or recall is None:
        return None
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def rounded(metrics: Mapping[str, float | None], digits: int = 6) -> dict[str, float | None]:
    return {k: None if v is None else round(v, digits) for k, v in metrics.items()}
