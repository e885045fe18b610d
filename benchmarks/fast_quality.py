"""Quality of the fast classifier on guardstack's own held-out splits.

    .venv/bin/python benchmarks/fast_quality.py [--weights DIR] [--per-source 600] [--json OUT]

Rebuilds the deterministic splits of ``guardstack train`` (content hash, fixed
seed), scores the held-out TEST rows of every training source and the
eval-only sets (non-commercial or unlicensed: never trained on) with the
shipped FastClassifier, and prints per source: rows, flag rate of ``harm`` at
the calibrated operating point (0.5), i.e. recall on unsafe rows and false
positive rate (over-refusal) on safe rows. At most ``--per-source`` rows per
source (deterministic sample) keep a CPU run to a few minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from guardstack.classifiers.fast import FastClassifier  # noqa: E402
from guardstack.training.data import build_mix  # noqa: E402
from guardstack.training.export import subject_of  # noqa: E402


def _sample(rows, n):
    if len(rows) <= n:
        return rows
    return sorted(rows, key=lambda e: hashlib.sha256(f"{e.source}|{e.id}".encode()).digest())[:n]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--weights", default=None)
    ap.add_argument("--per-source", type=int, default=600)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    mix = build_mix(Path(args.data_dir))
    clf = FastClassifier(args.weights)
    groups = {
        **{f"test:{k}": v for k, v in mix.test.items()},
        **{f"evalonly:{k}": v for k, v in mix.eval_only.items()},
    }
    results = {}
    t0 = time.time()
    for name, rows in sorted(groups.items()):
        rows = _sample(rows, args.per_source)
        if not rows:
            continue
        dets = clf.detect_sync([subject_of(e) for e in rows])
        for lang_filter in (None, "en"):
            sel = [
                (e, d)
                for e, d in zip(rows, dets, strict=True)
                if lang_filter is None or e.lang == lang_filter
            ]
            if lang_filter and len(sel) == len(rows):
                continue
            for label in ("unsafe", "safe"):
                part = [d for e, d in sel if (e.harm == 1) == (label == "unsafe")]
                if not part:
                    continue
                flagged = sum(d.scores.get("harm", 0.0) >= 0.5 for d in part)
                key = f"{name}{'[en]' if lang_filter else ''}:{label}"
                results[key] = {
                    "n": len(part),
                    "flag_rate": round(flagged / len(part), 4),
                    "metric": "recall" if label == "unsafe" else "FPR",
                }
                print(
                    f"{key:55s} n={len(part):5d} {results[key]['metric']:6s} "
                    f"{results[key]['flag_rate']:.3f}",
                    flush=True,
                )
    print(f"scored in {time.time() - t0:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
