"""Score labelled files with a :class:`~guardstack.guard.Guard` and compute metrics.

Each item is scored once: ``guard.detect_batch`` gives the raw scores (the
``harm`` score feeds AUPRC) and ``guard.policy.decide`` turns the same
detection into the decision (flag/block counts as predicted unsafe).
Throughput is items over the time spent in those batched calls; per-item
latency p50/p95 comes from a separate pass that scores a sample of the
file's items one at a time, as a single prompt arrives in production.
"""

from __future__ import annotations

import random
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guardstack.classifiers.base import HARM, Detection, Role, Subject
from guardstack.evaluation import metrics
from guardstack.evaluation.categories import to_taxonomy
from guardstack.evaluation.reader import Record, read_records
from guardstack.guard import Guard
from guardstack.verdict import Action, Status, Verdict

Positive = Literal["flag", "block"]

DEFAULT_BATCH_SIZE = 32
DEFAULT_LATENCY_SAMPLE = 200


@dataclass(frozen=True, slots=True)
class FileResult:
    file: str
    confusion: metrics.Confusion
    auprc: float | None
    per_category: dict[str, dict[str, float | int | None]]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_sample: int
    throughput_per_s: float | None
    errors: int
    roles: dict[str, int] = field(default_factory=dict)
    positive: Positive = "flag"
    batch_size: int = DEFAULT_BATCH_SIZE
    detector: str = ""
    #: Detector-specific figures, e.g. a cascade's escalation counts and cost.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form documented in docs/evaluation.md (floats rounded to 6 places)."""
        c = self.confusion
        return {
            "file": self.file,
            "n": c.n,
            "n_unsafe": c.n_unsafe,
            "n_safe": c.n_safe,
            "tp": c.tp,
            "fp": c.fp,
            "tn": c.tn,
            "fn": c.fn,
            "precision": _round(c.precision),
            "recall": _round(c.recall),
            "f1": _round(c.f1),
            "fpr": _round(c.fpr),
            "auprc": _round(self.auprc),
            "latency_p50_ms": _round(self.latency_p50_ms, 3),
            "latency_p95_ms": _round(self.latency_p95_ms, 3),
            "latency_sample": self.latency_sample,
            "throughput_per_s": _round(self.throughput_per_s, 1),
            "batch_size": self.batch_size,
            "positive": self.positive,
            "errors": self.errors,
            "roles": dict(self.roles),
            "detector": self.detector,
            "per_category_recall": {
                cat: {"n": v["n"], "recall": _round(v["recall"])}
                for cat, v in self.per_category.items()
            },
            **self.extra,
        }


def _round(value: float | int | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def validate(
    paths: Sequence[str | Path], role: Role | None = None, limit: int | None = None
) -> None:
    """Read every file once without scoring, so bad input fails before the
    model loads and before minutes of scoring. Raises ``InputError``."""
    for path in paths:
        for _ in read_records(path, role=role, limit=limit):
            pass


def is_positive(verdict: Verdict, positive: Positive = "flag") -> bool:
    """Whether a verdict predicts *unsafe*: flag or block by default, only block
    with ``positive="block"``."""
    if positive == "block":
        return verdict.decision is Action.BLOCK
    return verdict.decision is not Action.ALLOW


def harm_score(detection: Detection, predicted: bool) -> float:
    """The ranking score for AUPRC.

    The ``harm`` score when the detector gave one; else its highest category
    score; for a failed detection (no scores) 1.0 or 0.0 following the
    fail-open/closed decision, so the ranking agrees with what was decided.
    """
    scores = detection.scores
    if HARM in scores:
        return float(scores[HARM])
    if scores and detection.status is Status.OK:
        return float(max(scores.values()))
    return 1.0 if predicted else 0.0


def evaluate_file(
    path: str | Path,
    guard: Guard,
    *,
    role: Role | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    positive: Positive = "flag",
    latency_sample: int = DEFAULT_LATENCY_SAMPLE,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> FileResult:
    """Score one file; ``progress`` is called with the running item count after each batch."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    detector = guard.detector.name
    # Compact per-item columns: a file of millions of lines keeps ~10 bytes per item.
    labels = array("b")
    scores = array("d")
    predicted = array("b")
    categories: list[tuple[str, ...]] = []
    roles: dict[str, int] = {}
    errors = 0
    scoring_s = 0.0
    # Reservoir sample of subjects for the single-item latency pass: uniform
    # over the file without holding the file in memory.
    rng = random.Random(seed)
    sample: list[Subject] = []
    seen = 0

    for batch in _batches(read_records(path, role=role, limit=limit), batch_size):
        subjects = [r.subject for r in batch]
        start = time.perf_counter()
        detections = guard.detect_batch(subjects)
        vectors = guard.checked_topic_vectors()
        verdicts = [
            guard.policy.decide(s.role, d, detector, text=s.text, topic_vectors=vectors)
            for s, d in zip(subjects, detections, strict=True)
        ]
        scoring_s += time.perf_counter() - start
        for record, detection, verdict in zip(batch, detections, verdicts, strict=True):
            hit = is_positive(verdict, positive)
            labels.append(record.unsafe)
            predicted.append(hit)
            scores.append(harm_score(detection, hit))
            categories.append(to_taxonomy(record.categories, record.source, record.meta))
            roles[record.subject.role] = roles.get(record.subject.role, 0) + 1
            errors += verdict.status is not Status.OK
        if progress is not None:
            progress(len(labels))
        for subject in subjects:
            seen += 1
            if len(sample) < latency_sample:
                sample.append(subject)
            else:
                j = rng.randrange(seen)
                if j < latency_sample:
                    sample[j] = subject

    latencies = single_item_latencies(guard, sample, detector)
    return FileResult(
        file=str(path),
        confusion=metrics.Confusion.from_predictions(map(bool, labels), map(bool, predicted)),
        auprc=metrics.average_precision(labels, scores),
        per_category=metrics.per_category_recall(categories, labels, predicted),
        latency_p50_ms=metrics.percentile(latencies, 50),
        latency_p95_ms=metrics.percentile(latencies, 95),
        latency_sample=len(latencies),
        throughput_per_s=metrics.throughput(len(labels), scoring_s),
        errors=errors,
        roles=roles,
        positive=positive,
        batch_size=batch_size,
        detector=detector,
    )


def single_item_latencies(guard: Guard, subjects: Iterable[Subject], detector: str) -> list[float]:
    """Milliseconds to score and decide each subject on its own."""
    out = []
    for subject in subjects:
        start = time.perf_counter()
        (detection,) = guard.detect_batch([subject])
        guard.policy.decide(subject.role, detection, detector, text=subject.text,
                            topic_vectors=guard.checked_topic_vectors())
        out.append((time.perf_counter() - start) * 1000)
    return out


def _batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
