"""Speed and memory of the guard with the shipped classifier, against the targets.

    .venv/bin/python benchmarks/bench_classifier.py [--json] [--n 300] [--repeats 3]

Prints model load time (fresh process: imports plus model load, median over
repeats), single-prompt latency p50/p95 over ~300 real prompts sampled from
../shared/data (``guard.check`` one at a time; median of each repeat's
percentile), batched throughput at batch 32 and 64 (``guard.check_batch``,
median over repeats), the same throughput with the model's previous fixed
batches of 32 rows as the baseline (``--no-baseline`` skips it) and this
process's peak resident memory. The load
average is printed too: on a shared machine it explains slow runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
# A spread of lengths and kinds: attacks, harmful requests, over-refusal
# probes, everyday instructions, questions, code and math.
SOURCES = (
    "harmbench", "strongreject", "do_not_answer", "jailbreak_llms", "toxicchat_train",
    "or_bench_hard", "coconot", "cyberseceval_frr", "alpaca_instructions", "nq_open",
    "gsm8k", "arena_hard", "gpteacher", "hatecheck",
)
TARGETS = {  # name: (limit, "max" | "min")
    "load_s": (2.0, "max"),
    "latency_p50_ms": (10.0, "max"),
    "throughput_b32_per_s": (300.0, "min"),
    "throughput_b64_per_s": (300.0, "min"),
    "peak_rss_mb": (500.0, "max"),
}

LOAD_SNIPPET = """
import time
t = time.perf_counter()
from guardstack.guard import Guard
detector = None
if {weights!r}:
    from guardstack.classifiers.fast import FastClassifier
    detector = FastClassifier({weights!r})
g = Guard(policy={policy!r}, detector=detector)
g.detector
print(time.perf_counter() - t)
"""


def sample_prompts(data_dir: Path, n: int, seed: int,
                   sources: tuple[str, ...] = SOURCES) -> list[str]:
    from guardstack.evaluation.reader import read_records

    pool: list[str] = []
    for name in sources:
        path = data_dir / name / f"{name}.jsonl"
        if path.exists():
            texts = [r.subject.text for r in read_records(path, role="prompt")]
            pool.extend(t for t in random.Random(seed).sample(texts, min(len(texts), n)) if t)
    if not pool:
        raise SystemExit(f"no prompts found under {data_dir} (use --data DIR)")
    return random.Random(seed).sample(pool, min(n, len(pool)))


def load_seconds(policy: str | None, weights: str | None, repeats: int) -> float:
    """Median wall time for a fresh interpreter to import guardstack and load the model."""
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", LOAD_SNIPPET.format(policy=policy, weights=weights)],
            capture_output=True, text=True, check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def percentile(values: list[float], q: float) -> float:
    from guardstack.evaluation.metrics import percentile as pct

    result = pct(values, q)
    assert result is not None
    return result


def throughput(guard: Any, subjects: list[Any], size: int, repeats: int) -> float:
    """Median subjects per second through ``guard.check_batch`` in batches of ``size``."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(subjects), size):
            guard.check_batch(subjects[i : i + size])
        rates.append(len(subjects) / (time.perf_counter() - start))
    return statistics.median(rates)


def run(args: argparse.Namespace) -> dict[str, object]:
    from guardstack.classifiers.base import Subject
    from guardstack.guard import Guard

    prompts = sample_prompts(args.data, args.n, args.seed, tuple(args.sources))
    figures: dict[str, object] = {
        "n_prompts": len(prompts),
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    weights = str(args.weights) if args.weights else None
    figures["load_s"] = round(load_seconds(args.policy, weights, args.repeats), 3)

    detector = None
    if weights:
        from guardstack.classifiers.fast import FastClassifier

        detector = FastClassifier(weights)
    guard = Guard(policy=args.policy, detector=detector)
    figures["detector"] = guard.detector.name
    for text in prompts[:10]:  # warm-up: first calls allocate ONNX buffers
        guard.check(text)

    p50s, p95s, means = [], [], []
    for _ in range(args.repeats):
        times = []
        for text in prompts:
            start = time.perf_counter()
            guard.check(text)
            times.append((time.perf_counter() - start) * 1000)
        p50s.append(percentile(times, 50))
        p95s.append(percentile(times, 95))
        means.append(statistics.fmean(times))
    figures["latency_p50_ms"] = round(statistics.median(p50s), 2)
    figures["latency_p95_ms"] = round(statistics.median(p95s), 2)
    # The mean, not the median, is what bounds throughput: long texts are chunked.
    figures["latency_mean_ms"] = round(statistics.median(means), 2)

    subjects = [Subject(t) for t in prompts]
    for size in args.batch_sizes:
        figures[f"throughput_b{size}_per_s"] = round(
            throughput(guard, subjects, size, args.repeats), 1)

    # Baseline in the same run: the model batches the classifier used before
    # length-budgeted batching (fixed 32 rows, padded to the longest).
    model = guard.detector
    if args.baseline and hasattr(model, "batch_tokens"):
        rows, tokens = model.batch_size, model.batch_tokens
        model.batch_size, model.batch_tokens = 32, 1 << 30
        try:
            for size in args.batch_sizes:
                base = throughput(guard, subjects, size, args.repeats)
                figures[f"baseline_fixed32_b{size}_per_s"] = round(base, 1)
                figures[f"speedup_b{size}"] = round(
                    float(figures[f"throughput_b{size}_per_s"]) / base, 2)  # type: ignore[arg-type]
        finally:
            model.batch_size, model.batch_tokens = rows, tokens

    # ru_maxrss is KiB on Linux.
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    targets = {}
    for name, (limit, kind) in TARGETS.items():
        value = figures.get(name)
        if isinstance(value, int | float):
            met = value <= limit if kind == "max" else value >= limit
            targets[name] = {"target": f"{'<=' if kind == 'max' else '>='} {limit:g}", "met": met}
    figures["targets"] = targets
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"normalized datasets folder (default {DEFAULT_DATA})")
    parser.add_argument("--n", type=int, default=300, help="prompts to time (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats; medians are reported")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--policy", default=None, help="policy YAML (default: the shipped one)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="fast-classifier weights folder (default: the shipped weights)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), metavar="NAME",
                        help="datasets to sample prompts from (default: a spread that includes "
                        "long jailbreak templates; name e.g. or_bench_hard nq_open for "
                        "typical chat prompts)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the baseline (fixed model batches of 32 rows)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    figures = run(args)
    if args.json:
        print(json.dumps(figures))
        return 0
    targets = figures.pop("targets")
    assert isinstance(targets, dict)
    for name, value in figures.items():
        line = f"{name:26} {value}"
        if name in targets:
            t = targets[name]
            line = f"{line:40} target {t['target']:8} {'met' if t['met'] else 'MISSED'}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
