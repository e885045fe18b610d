"""The runner's bookkeeping, with detectors whose scores the test controls.

The real classifier's output cannot be dictated, so counting, batching, the
flag/block rule and error handling are checked here with small detectors;
tests/evaluation/test_eval_cli.py runs the real model end to end.
"""

import json
import re

from guardstack.classifiers.base import Detection
from guardstack.evaluation import metrics, report, runner
from guardstack.guard import Guard
from guardstack.policy import Policy


class TableDetector:
    """Harm (and hate) score looked up from the text; records the batch sizes it saw."""

    name = "table"

    def __init__(self, table):
        self.table = table
        self.calls: list[int] = []

    def detect_sync(self, subjects):
        self.calls.append(len(subjects))
        scores = [self.table[s.text] for s in subjects]
        return [Detection(scores={"harm": x, "hate": x}) for x in scores]

    async def detect(self, subjects):
        return self.detect_sync(subjects)


class BrokenDetector:
    name = "broken"

    def detect_sync(self, subjects):
        raise RuntimeError("weights missing")

    async def detect(self, subjects):
        raise RuntimeError("weights missing")


ITEMS = [  # text, label, harm score
    ("a", "unsafe", 0.9), ("b", "unsafe", 0.7), ("c", "unsafe", 0.2), ("d", "safe", 0.6),
    ("e", "safe", 0.1), ("f", "safe", 0.3), ("g", "unsafe", 0.55),
]


def write_items(path, items=ITEMS):
    with open(path, "w", encoding="utf-8") as f:
        for text, label, _ in items:
            f.write(json.dumps({"text": text, "label": label, "categories": ["hate"]}) + "\n")
    return path


def test_metrics_follow_the_policy_decisions(tmp_path):
    f = write_items(tmp_path / "x.jsonl")
    det = TableDetector({t: s for t, _, s in ITEMS})
    guard = Guard(policy=Policy.from_yaml("version: 1\n"), detector=det)  # block from 0.5
    counts: list[int] = []
    result = runner.evaluate_file(f, guard, batch_size=3, latency_sample=4,
                                  progress=counts.append)
    assert counts == [3, 6, 7]

    threshold = guard.policy.role("prompt").rule("harm").threshold
    labels = [label == "unsafe" for _, label, _ in ITEMS]
    predicted = [score >= threshold for _, _, score in ITEMS]
    assert result.confusion == metrics.Confusion.from_predictions(labels, predicted)
    assert result.auprc == metrics.average_precision(labels, [s for *_, s in ITEMS])
    assert result.per_category == metrics.per_category_recall(
        [("hate",)] * len(ITEMS), labels, predicted)
    # Batches of 3, 3, 1, then four single-item latency calls.
    assert det.calls == [3, 3, 1, 1, 1, 1, 1]
    assert result.latency_sample == 4
    assert result.latency_p50_ms is not None and result.latency_p95_ms >= result.latency_p50_ms
    assert result.throughput_per_s is not None and result.throughput_per_s > 0
    assert result.errors == 0 and result.roles == {"prompt": len(ITEMS)}


def test_positive_block_counts_only_blocks(tmp_path):
    f = write_items(tmp_path / "x.jsonl")
    policy = Policy.from_yaml(
        "version: 1\nprompt:\n  default: {threshold: 0.5, action: flag}\n  categories:\n"
        "    harm: {threshold: 0.8, action: block}\n"
    )
    guard = Guard(policy=policy, detector=TableDetector({t: s for t, _, s in ITEMS}))
    flag = runner.evaluate_file(f, guard, positive="flag", latency_sample=0)
    block = runner.evaluate_file(f, guard, positive="block", latency_sample=0)
    labels = [label == "unsafe" for _, label, _ in ITEMS]
    assert flag.confusion == metrics.Confusion.from_predictions(
        labels, [s >= 0.5 for *_, s in ITEMS])
    assert block.confusion == metrics.Confusion.from_predictions(
        labels, [s >= 0.8 for *_, s in ITEMS])
    assert flag.auprc == block.auprc  # the ranking does not depend on the decision rule


def test_detector_errors_follow_the_fail_mode(tmp_path):
    f = write_items(tmp_path / "x.jsonl")
    n_unsafe = sum(label == "unsafe" for _, label, _ in ITEMS)
    open_guard = Guard(detector=BrokenDetector())
    opened = runner.evaluate_file(f, open_guard, latency_sample=2)
    assert opened.errors == len(ITEMS)
    assert opened.confusion.tp == 0 and opened.confusion.fn == n_unsafe
    assert opened.auprc == n_unsafe / len(ITEMS)  # every score ties at 0

    closed = Policy.from_yaml("version: 1\nprompt: {on_error: closed}\n")
    shut = runner.evaluate_file(f, Guard(policy=closed, detector=BrokenDetector()))
    assert shut.confusion.fn == 0 and shut.confusion.tn == 0


def test_json_form_has_no_nan_and_nulls_for_undefined(tmp_path):
    safe_only = [("e", "safe", 0.1), ("f", "safe", 0.3)]
    f = write_items(tmp_path / "safe.jsonl", safe_only)
    guard = Guard(detector=TableDetector({t: s for t, _, s in safe_only}))
    result = runner.evaluate_file(f, guard, latency_sample=0)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["precision"] is None and data["recall"] is None and data["auprc"] is None
    assert data["latency_p50_ms"] is None and data["latency_sample"] == 0
    assert data["fpr"] == 0.0 and data["n"] == 2 and data["n_safe"] == 2
    table = report.render([result])
    assert "n/a" in table
    assert not re.search(r"\bnan\b", table, re.IGNORECASE)
