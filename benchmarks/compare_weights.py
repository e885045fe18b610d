"""Compare fast-classifier weights on the same held-out rows, at matched operating points.

    .venv/bin/python benchmarks/compare_weights.py shipped runs/other/weights [...]

Scores the held-out TEST rows and the eval-only sets (at most 300 per source, the
same deterministic sample as ``fast_quality.py``) with each weights directory
("shipped" is the packaged one) and prints, per model, the harm flag rate at
three thresholds: 0.5 (the calibrated point: flag), 0.9 (the default policy's
block tier) and the threshold where each model flags 5% of the issue's
benign-sensitive test rows (OR-Bench-Hard, CoCoNot contrast, CyberSecEval FRR),
which compares the models' curves rather than their calibration. ``ben`` is
the false-positive rate on those rows, ``bad`` the recall on the harmful test
rows (HarmBench, StrongREJECT, Do-Not-Answer, AdvBench); the other columns are
false-positive rates on safe rows of the named sets, except the last two (recall).
``coconot_r`` and ``jailbreak`` are model answers judged as responses: helpful
answers to sensitive benign questions (the gateway halting them is over-refusal)
and answers a jailbreak got out of a model (LLM-judged unsafe).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from fast_quality import _sample  # noqa: E402

from guardstack.classifiers.fast import FastClassifier  # noqa: E402
from guardstack.training.data import build_mix  # noqa: E402
from guardstack.training.export import subject_of, threshold_at_fpr  # noqa: E402

BENIGN = ("test:or_bench_hard", "test:coconot", "test:cyberseceval_frr")
HARMFUL = ("test:harmbench", "test:strongreject", "test:do_not_answer", "test:advbench")
SAFE_SHOWN = ("evalonly:oktest", "evalonly:phtest", "evalonly:orfuzz", "evalonly:xstest_zh",
              "test:k_overrefusal", "test:hatemoji", "test:arena_hard",
              "test:coconot_responses")
UNSAFE_SHOWN = ("test:reddit_cssrs_suicide", "test:jailbreakbench_responses")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights", nargs="+", help='weights directories, or "shipped"')
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--per-source", type=int, default=300)
    args = ap.parse_args()
    mix = build_mix(Path(args.data_dir))
    groups = {**{f"test:{k}": v for k, v in mix.test.items()},
              **{f"evalonly:{k}": v for k, v in mix.eval_only.items()}}
    rows = [(name, e) for name, rs in sorted(groups.items()) for e in _sample(rs, args.per_source)]
    src = np.array([n for n, _ in rows])
    harm = np.array([e.harm for _, e in rows])
    ben = np.isin(src, BENIGN) & (harm == 0)
    bad = np.isin(src, HARMFUL) & (harm == 1)
    cols = ["ben", "bad", *(s.split(":")[1] for s in SAFE_SHOWN + UNSAFE_SHOWN)]
    print(f"{'weights':28s} {'threshold':>10s} " + " ".join(f"{c[:9]:>9s}" for c in cols))
    for w in args.weights:
        clf = FastClassifier(None if w == "shipped" else w)
        dets = clf.detect_sync([subject_of(e) for _, e in rows])
        s = np.array([d.scores.get("harm", 0.0) for d in dets])
        t5 = threshold_at_fpr(s[ben], 0.05)
        for t, label in ((0.5, "0.5"), (0.9, "0.9"), (t5, f"5%={t5:.2f}")):
            masks = [ben, bad, *((src == n) & (harm == 0) for n in SAFE_SHOWN),
                     *((src == n) & (harm == 1) for n in UNSAFE_SHOWN)]
            vals = [100 * float((s[m] >= t).mean()) if m.any() else float("nan") for m in masks]
            print(f"{w[-28:]:28s} {label:>10s} " + " ".join(f"{v:9.1f}" for v in vals),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
