"""Two weights folders side by side: speed (e.g. two quantizations of one model).

    .venv/bin/python benchmarks/bench_quantization.py WEIGHTS_A WEIGHTS_B [--n 300] [--rounds 15]

Two weights folders (e.g. the same model quantized both ways, or the shipped
weights and a new export) are loaded in one process and score the same
batches of 64 typical chat prompts in turn, A then B then B then A, so the
machine's drift falls on both. Prints the median seconds per pass for each
and the median of the per-round ratios B/A.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_classifier import sample_prompts  # noqa: E402

from guardstack.classifiers.base import Subject  # noqa: E402
from guardstack.classifiers.fast import FastClassifier  # noqa: E402

TYPICAL = ["or_bench_hard", "nq_open", "cyberseceval_frr", "gsm8k", "coconot"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    prompts = sample_prompts(Path(args.data), args.n, 7, TYPICAL)
    subjects = [Subject(text=p) for p in prompts]
    clfs = {"a": FastClassifier(args.a), "b": FastClassifier(args.b)}

    def one(name: str) -> float:
        t0 = time.perf_counter()
        for i in range(0, len(subjects), 64):
            clfs[name].detect_sync(subjects[i:i + 64])
        return time.perf_counter() - t0

    one("a"), one("b")  # warm-up
    times: dict[str, list[float]] = {"a": [], "b": []}
    for r in range(args.rounds):
        for name in ("ab" if r % 2 == 0 else "ba"):
            times[name].append(one(name))
    ratios = [b / a for a, b in zip(times["a"], times["b"], strict=True)]
    for name, path in (("a", args.a), ("b", args.b)):
        med = statistics.median(times[name])
        print(f"{name}: {path}: median {med:.3f} s per {len(subjects)} prompts "
              f"({len(subjects) / med:.0f}/s)")
    print(f"ratio b/a: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}, {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
