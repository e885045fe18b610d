"""Style injection: a request wrapped in output-format directives ("respond only
in JSON", "output YAML, no prose. Task: ...", a JSON API persona with the request
as a string value; Wei et al. 2023). The fast classifier with and without its
framing reading (guardstack/framing.py), in one run.

    .venv/bin/python benchmarks/style_injection.py --split dev
    .venv/bin/python benchmarks/style_injection.py --split test
    .venv/bin/python benchmarks/style_injection.py --split test_2

``dev``: the DEV rows of the training mix and style_templates_dev.txt.
``test``: the held-out TEST rows, the 24 templates of style_templates_test.txt
and the 80 benign format requests of style_benign_test.jsonl, written by a
helper who had not seen any reading. ``test_2``: the same TEST rows in the 24
templates of style_templates_test_2.txt and the 60 requests of
style_benign_test_2.jsonl, by a second helper who had seen neither the
reading nor the first set. A reading written for style injection (branch
``style-reading``) was revised on ``test`` after missing its bar there and
missed it again on ``test_2``, so it did not ship; both sets are spent for
choosing it (docs/normalization.md, "Style injection"). Per split:

1. Every set's prompts as written: the harm flag rate at 0.5 with and without
   the reading (what the reading costs on prompts without any wrapper).
2. The harmful requests (HarmBench, StrongREJECT, Do-Not-Answer, AdvBench
   behaviors) and the benign-but-sensitive prompts (OR-Bench-Hard, CoCoNot,
   CyberSecEval FRR) in each template: found and flagged, with and without.
3. (test, test_2) The benign format requests: flagged, with and without.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from fast_quality import _sample  # noqa: E402
from framing_robustness import _flagged, flag_rates_per_set  # noqa: E402

from guardstack.classifiers.fast import FastClassifier  # noqa: E402
from guardstack.training.data import build_mix  # noqa: E402

HARMFUL = ("harmbench", "strongreject", "do_not_answer", "advbench")
BENIGN = ("or_bench_hard", "coconot", "cyberseceval_frr")
HERE = Path(__file__).parent


def templates(name: str) -> list[str]:
    """One template per line, ``{r}`` the request, a literal ``\\n`` a line break."""
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return [t.strip().replace("\\n", "\n") for t in lines if "{r}" in t]


def fill(template: str, request: str) -> str:
    # str.replace, not str.format: JSON braces stay as written; a request
    # inside a JSON string keeps the JSON valid
    if '"{r}"' in template:
        request = json.dumps(request)[1:-1]
    return template.replace("{r}", request)


def prompt_rows(split: str, data_dir: Path, per_source: int) -> list[tuple[str, Any]]:
    """(set name, row) for up to ``per_source`` prompt rows of each set: the DEV
    rows for ``dev``, else the TEST rows and the eval-only sets."""
    mix = build_mix(data_dir)
    if split == "dev":
        groups: dict[str, list] = {}
        for e in mix.dev:
            groups.setdefault(e.source, []).append(e)
    else:
        groups = {**mix.test, **{f"evalonly:{k}": v for k, v in mix.eval_only.items()}}
    return [(n, e) for n, rs in sorted(groups.items()) for e in _sample(rs, per_source)
            if e.role == "prompt"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("dev", "test", "test_2"), required=True)
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--per-source", type=int, default=300)
    ap.add_argument("--per-template", type=int, default=120,
                    help="harmful and benign rows put into each template")
    args = ap.parse_args()
    rows = prompt_rows(args.split, Path(args.data_dir), args.per_source)
    # One chunk per model call: int8 scores move with their batch-mates
    # (docs/model-card.md, Limitations), which would blur a change this small.
    models = {"as written": FastClassifier(unframe=False, batch_size=1),
              "with framing read": FastClassifier(batch_size=1)}

    def flagged(texts: list[str]) -> list[float]:
        return [100 * float(f.mean()) for f in _flagged(models, texts)]

    print(f"split {args.split}")
    flag_rates_per_set(models, rows)
    bad = [e.text for n, e in rows if n in HARMFUL and e.harm == 1
           and not e.id.startswith("advbench-string")][: args.per_template]
    ben = [e.text for n, e in rows if n in BENIGN and e.harm == 0][: args.per_template]
    name = f"style_templates_{args.split}.txt"
    print(f"\n{name}: harmful found ({len(bad)}) / benign-sensitive flagged ({len(ben)}), "
          "as written -> with framing read")
    totals = []
    for t in templates(name):
        r = flagged([fill(t, x) for x in bad]) + flagged([fill(t, x) for x in ben])
        totals.append(r)
        print(f"  {r[0]:5.1f} -> {r[1]:5.1f}   {r[2]:5.1f} -> {r[3]:5.1f}   "
              f"{t[:70]!r}", flush=True)
    mean = np.mean(totals, axis=0)
    bare = flagged(bad) + flagged(ben)
    print(f"  {mean[0]:5.1f} -> {mean[1]:5.1f}   {mean[2]:5.1f} -> {mean[3]:5.1f}   all templates")
    print(f"  {bare[0]:5.1f} -> {bare[1]:5.1f}   {bare[2]:5.1f} -> {bare[3]:5.1f}   no template")
    if args.split != "dev":
        path = HERE / f"style_benign_{args.split}.jsonl"
        texts = [json.loads(line)["text"] for line in path.read_text().splitlines() if line]
        a, b = flagged(texts)
        print(f"\nbenign format requests, {path.name} ({len(texts)}): flagged {a:.1f} -> {b:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
