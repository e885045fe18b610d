"""Answers halted with and without ``response.clean_prompt_threshold``, on
guardstack's own held-out response rows.

    .venv/bin/python benchmarks/clean_prompt_answers.py [--split dev|test] [--threshold 0.9]

Rebuilds the deterministic splits of ``guardstack train``, takes the
response-level rows of the chosen split (CoCoNot, DICES, GPTeacher,
JailbreakBench artifacts, MT-Bench-101, synthetic refusals), and for each row
judges its prompt (the last user message, with what came before it) and then
its answer under the default policy, as the gateway does. Prints, per source
and label, the share of answers halted with the setting off (every answer
from its rule's threshold) and on (answers to clean prompts from
``--threshold``), and on again with a rule measured and not shipped (a
prompt with a jailbreak tactic or a format directive is never clean:
``style_directives.strict_answer``). The default policy's value was chosen
on ``dev``; ``test`` was scored once, against a bar written down before
(docs/model-card.md).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from style_directives import strict_answer  # noqa: E402

from guardstack.classifiers.base import Subject  # noqa: E402
from guardstack.classifiers.fast import FastClassifier  # noqa: E402
from guardstack.policy import Policy  # noqa: E402
from guardstack.training.data import build_mix  # noqa: E402
from guardstack.verdict import Action, Status  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--threshold", type=float, default=0.9)
    args = ap.parse_args()
    mix = build_mix(Path(args.data_dir))
    pool = mix.dev if args.split == "dev" else [e for v in mix.test.values() for e in v]
    rows = [e for e in pool if e.role == "response" and e.context]
    policy = Policy.default()
    policy = replace(policy, roles={
        **policy.roles,
        "response": replace(policy.role("response"), clean_prompt_threshold=args.threshold)})
    clf = FastClassifier()
    answers = clf.detect_sync([Subject(e.text, "response", e.context) for e in rows])
    prompts = clf.detect_sync([Subject(e.context[-1].content, "prompt", tuple(e.context[:-1]))
                               for e in rows])
    table: dict[tuple[str, int], list[tuple[bool, ...]]] = {}
    for e, a, p in zip(rows, answers, prompts, strict=True):
        pv = policy.decide("prompt", p, "fast", text=e.context[-1].content)
        clean = pv.decision is Action.ALLOW and pv.status is Status.OK
        off = policy.decide("response", a, "fast").decision is Action.BLOCK
        on = policy.decide("response", a, "fast", prompt_clean=clean).decision is Action.BLOCK
        plain = clean and not strict_answer([e.context[-1].content])
        strict = policy.decide("response", a, "fast", prompt_clean=plain).decision is Action.BLOCK
        for key in ((e.source, e.harm), ("ALL", e.harm)):
            table.setdefault(key, []).append((off, on, strict, clean, plain))
    print(f"split={args.split} rows={len(rows)} clean_prompt_threshold={args.threshold}")
    print(f"{'source':28s} {'label':6s} {'n':>5s} {'halted off':>10s} {'halted on':>10s} "
          f"{'on, strict':>10s} {'clean prompts':>13s} {'clean, strict':>13s}")
    for (source, harm), v in sorted(table.items(), key=lambda kv: (kv[0][0] == "ALL", kv[0])):
        n = len(v)
        print(f"{source:28s} {'unsafe' if harm else 'safe':6s} {n:5d} "
              f"{sum(x[0] for x in v) / n:10.1%} {sum(x[1] for x in v) / n:10.1%} "
              f"{sum(x[2] for x in v) / n:10.1%} {sum(x[3] for x in v) / n:13.1%} "
              f"{sum(x[4] for x in v) / n:13.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
