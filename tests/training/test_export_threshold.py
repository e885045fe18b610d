"""Comparing models at one false-positive rate: the threshold helper."""

import random

from guardstack.training.export import threshold_at_fpr


def test_the_threshold_flags_at_most_the_rate_and_is_the_lowest_that_does():
    rng = random.Random(3)
    neg = [rng.random() for _ in range(200)]
    t = threshold_at_fpr(neg, 0.05)
    assert sum(s >= t for s in neg) <= 10
    # the highest score it lets through would push the rate over the limit
    below = max(s for s in neg if s < t)
    assert sum(s >= below for s in neg) > 10


def test_ties_at_the_cut_are_all_left_out_and_no_scores_give_zero():
    assert sum(s >= threshold_at_fpr([0.9] * 20, 0.05) for s in [0.9] * 20) == 0
    assert threshold_at_fpr([], 0.05) == 0.0
