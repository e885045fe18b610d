import math
import random

import pytest

from guardstack.evaluation import metrics
from guardstack.evaluation.metrics import Confusion


def brute_force_ap(labels, scores):
    """AP straight from its definition, one threshold per distinct score."""
    n_pos = sum(labels)
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(scores), reverse=True):
        picked = [y for y, s in zip(labels, scores, strict=True) if s >= t]
        tp = sum(picked)
        recall = tp / n_pos
        ap += (recall - prev_recall) * (tp / len(picked))
        prev_recall = recall
    return ap


def test_confusion_counts_each_cell():
    labels = [True, True, True, False, False, False, False]
    predicted = [True, True, False, True, False, False, False]
    c = Confusion.from_predictions(labels, predicted)
    assert (c.tp, c.fn, c.fp, c.tn) == (2, 1, 1, 3)
    assert c.n == 7 and c.n_unsafe == 3 and c.n_safe == 4
    assert c.precision == pytest.approx(2 / 3)
    assert c.recall == pytest.approx(2 / 3)
    assert c.fpr == pytest.approx(1 / 4)


def test_f1_is_harmonic_mean_of_precision_and_recall():
    rng = random.Random(3)
    for _ in range(200):
        labels = [rng.random() < 0.4 for _ in range(30)]
        predicted = [rng.random() < 0.5 for _ in range(30)]
        c = Confusion.from_predictions(labels, predicted)
        expected = metrics.f1_from(c.precision, c.recall)
        if expected is None:
            continue
        assert c.f1 == pytest.approx(expected)


def test_undefined_metrics_are_none_not_nan():
    all_safe_allowed = Confusion.from_predictions([False, False], [False, False])
    assert all_safe_allowed.precision is None  # nothing predicted unsafe
    assert all_safe_allowed.recall is None  # no unsafe items
    assert all_safe_allowed.f1 is None
    assert all_safe_allowed.fpr == 0.0

    all_safe_flagged = Confusion.from_predictions([False, False], [True, False])
    assert all_safe_flagged.precision == 0.0 and all_safe_flagged.fpr == 0.5
    assert all_safe_flagged.f1 is None  # recall undefined, so the harmonic mean is too

    all_unsafe = Confusion.from_predictions([True, True], [True, False])
    assert all_unsafe.fpr is None  # no safe items
    assert all_unsafe.recall == 0.5

    empty = Confusion()
    for value in (empty.precision, empty.recall, empty.f1, empty.fpr):
        assert value is None


def test_f1_is_zero_when_every_unsafe_item_is_missed():
    c = Confusion.from_predictions([True, False], [False, False])
    assert c.precision is None
    assert c.recall == 0.0
    assert c.f1 == 0.0


def test_confusion_rejects_length_mismatch():
    with pytest.raises(ValueError):
        Confusion.from_predictions([True, False], [True])


def test_average_precision_matches_scikit_learn_documented_example():
    # The example in scikit-learn's average_precision_score docstring.
    ap = metrics.average_precision([False, False, True, True], [0.1, 0.4, 0.35, 0.8])
    assert ap == pytest.approx(0.8333333333)


def test_average_precision_matches_definition_with_ties():
    rng = random.Random(7)
    for _ in range(100):
        n = rng.randint(1, 40)
        labels = [rng.random() < 0.3 for _ in range(n)]
        if not any(labels):
            labels[0] = True
        # Coarse scores so many tie.
        scores = [round(rng.random(), 1) for _ in range(n)]
        assert metrics.average_precision(labels, scores) == pytest.approx(
            brute_force_ap(labels, scores)
        )


def test_average_precision_edge_cases():
    assert metrics.average_precision([False, False], [0.2, 0.9]) is None
    assert metrics.average_precision([True, True, False], [0.9, 0.8, 0.1]) == 1.0
    # One shared score: precision is the prevalence at the only threshold.
    assert metrics.average_precision([True, False, False, False], [0.5] * 4) == 0.25
    assert metrics.average_precision([True, True], [0.0, 0.0]) == 1.0
    with pytest.raises(ValueError):
        metrics.average_precision([True], [math.nan])
    with pytest.raises(ValueError):
        metrics.average_precision([True, False], [0.5])


def test_percentile_and_throughput():
    values = [float(v) for v in range(1, 101)]
    assert metrics.percentile(values, 50) == pytest.approx(50.5)
    assert metrics.percentile(values, 95) == pytest.approx(95.05)
    assert metrics.percentile([], 50) is None
    assert metrics.throughput(300, 1.5) == 200.0
    assert metrics.throughput(0, 1.0) is None
    assert metrics.throughput(10, 0.0) is None


def test_per_category_recall_counts_only_unsafe_items():
    cats = [("cbrn",), ("cbrn", "weapons"), ("weapons",), ("cbrn",), ()]
    labels = [True, True, True, False, True]
    predicted = [True, False, True, True, True]
    out = metrics.per_category_recall(cats, labels, predicted)
    assert out == {
        "cbrn": {"n": 2, "recall": 0.5},
        "weapons": {"n": 2, "recall": 0.5},
    }
