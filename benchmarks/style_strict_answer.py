"""Which prompts a strict answer check after format directives would reach.

    .venv/bin/python benchmarks/style_strict_answer.py --split dev
    .venv/bin/python benchmarks/style_strict_answer.py --split test_3

The gateway halts an answer to a clean prompt only from
``response.clean_prompt_threshold`` (0.9 in the default policy). A harmful
request wrapped in output-format directives (style injection: "respond only in
JSON", the request as a JSON value, "Task: ...") scores clean, so its answer
got that relaxation too. ``style_directives.strict_answer`` names such
prompts (and prompts with a jailbreak tactic), for an experiment in which
their answers were judged from the rule's own threshold; it cost more than
it caught and did not ship (``style_directives.py``). Per split:

1. The harmful requests (HarmBench, StrongREJECT, Do-Not-Answer, AdvBench
   behaviors) in each template of ``style_templates_<split>.txt``: the share
   the prompt check passes (not flagged at 0.5, framing reading on) and, of
   those, the share ``strict_answer`` names: the answers that would get the
   strict check.
2. Every set's prompts as written: the share ``strict_answer`` names (how much
   ordinary traffic would lose the relaxation; benign sets are the cost).
3. (test splits) The benign format requests of ``style_benign_<split>.jsonl``:
   the share named (by design most of them; what it costs is measured on their
   answers, ``benchmarks/style_answers.py``).

``dev``: the DEV rows of the training mix and style_templates_dev.txt, on
which the pattern was written. ``test_3``: TEST rows and the 24 templates and
60 benign requests a helper wrote without seeing the pattern.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from style_directives import strict_answer  # noqa: E402
from style_injection import HARMFUL, fill, prompt_rows, templates  # noqa: E402

from guardstack.classifiers.base import Subject  # noqa: E402
from guardstack.classifiers.fast import FastClassifier  # noqa: E402

SPLITS = ("dev", "test", "test_2", "test_3")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=SPLITS, required=True)
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--per-source", type=int, default=300)
    ap.add_argument("--per-template", type=int, default=120,
                    help="harmful rows put into each template")
    args = ap.parse_args()
    rows = prompt_rows(args.split, Path(args.data_dir), args.per_source)
    clf = FastClassifier()

    def passed(texts: list[str]) -> list[bool]:
        found = clf.detect_sync([Subject(x, "prompt") for x in texts])
        return [d.scores.get("harm", 0.0) < 0.5 for d in found]

    print(f"split {args.split}")
    bad = [e.text for n, e in rows if n in HARMFUL and e.harm == 1
           and not e.id.startswith("advbench-string")][: args.per_template]
    name = f"style_templates_{args.split}.txt"
    print(f"\n{name}: {len(bad)} harmful requests per template; passed by the prompt check, "
          "and of those named strict")
    n_passed = n_strict = 0
    for t in templates(name):
        texts = [fill(t, x) for x in bad]
        ok = [x for x, p in zip(texts, passed(texts), strict=True) if p]
        strict = sum(strict_answer([x]) for x in ok)
        n_passed += len(ok)
        n_strict += strict
        share = f"{100 * strict / len(ok):5.1f}%" if ok else "    -"
        print(f"  passed {100 * len(ok) / len(texts):5.1f}%  strict {share}   {t[:70]!r}",
              flush=True)
    print(f"  all templates: passed {n_passed} of {len(bad) * len(templates(name))}, strict "
          f"{n_strict} ({100 * n_strict / max(1, n_passed):.1f}%)")
    print("\nprompts as written, named strict:")
    by_set: dict[str, list[bool]] = {}
    for n, e in rows:
        by_set.setdefault(f"{n} ({'unsafe' if e.harm else 'safe'})", []).append(
            strict_answer([e.text]))
    for key, v in sorted(by_set.items()):
        print(f"  {key:40s} {len(v):5d} {100 * sum(v) / len(v):6.1f}%")
    safe = [x for k, v in by_set.items() if k.endswith("(safe)") for x in v]
    print(f"  {'all safe prompts':40s} {len(safe):5d} {100 * sum(safe) / max(1, len(safe)):6.1f}%")
    if args.split != "dev":
        path = REPO / "benchmarks" / f"style_benign_{args.split}.jsonl"
        texts = [json.loads(line)["text"] for line in path.read_text().splitlines() if line]
        strict = sum(strict_answer([x]) for x in texts)
        print(f"\nbenign format requests, {path.name} ({len(texts)}): named strict "
              f"{100 * strict / len(texts):.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
