"""Answers to format-directed prompts, halted with and without a strict check.

    .venv/bin/python benchmarks/style_answers.py --upstream http://127.0.0.1:8080/v1 \\
        --model smollm2-135m-instruct --split test_3

Asks a model server (SmolLM2-135M-Instruct under llama.cpp here) for answers,
at temperature 0, to

* the benign format requests of ``style_benign_<split>.jsonl`` (and of the
  earlier splits' files with ``--benign-splits``), and
* harmful TEST requests (HarmBench, StrongREJECT, Do-Not-Answer, AdvBench
  behaviors) put into the templates of ``style_templates_<split>.txt``,

then judges each prompt and its answer under the default policy, as the
gateway does, twice: with the clean-prompt relaxation as it was (any allowed
prompt is clean) and with ``style_directives.strict_answer`` (a prompt with a
jailbreak tactic or format directive is never clean; an experiment that did
not ship). Prints the share of answers halted each way. The answers are
generated at run time and never written to disk.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from fast_quality import _sample  # noqa: E402
from openai import OpenAI  # noqa: E402
from style_directives import strict_answer  # noqa: E402
from style_injection import HARMFUL, fill, templates  # noqa: E402

from guardstack.classifiers.base import Message, Subject  # noqa: E402
from guardstack.classifiers.fast import FastClassifier  # noqa: E402
from guardstack.policy import Policy  # noqa: E402
from guardstack.training.data import build_mix  # noqa: E402
from guardstack.verdict import Action, Status  # noqa: E402


def halted(prompts: list[str], answers: list[str], clf: FastClassifier,
           policy: Policy) -> tuple[int, int, int, int]:
    """(halted before, halted with strict_answer, clean prompts, clean and plain)."""
    found_p = clf.detect_sync([Subject(p, "prompt") for p in prompts])
    found_a = clf.detect_sync([Subject(a, "response", (Message("user", p),))
                               for p, a in zip(prompts, answers, strict=True)])
    before = after = n_clean = n_plain = 0
    for p, dp, da in zip(prompts, found_p, found_a, strict=True):
        pv = policy.decide("prompt", dp, "fast", text=p)
        clean = pv.decision is Action.ALLOW and pv.status is Status.OK
        plain = clean and not strict_answer([p])
        n_clean += clean
        n_plain += plain
        before += policy.decide("response", da, "fast", prompt_clean=clean).decision \
            is Action.BLOCK
        after += policy.decide("response", da, "fast", prompt_clean=plain).decision \
            is Action.BLOCK
    return before, after, n_clean, n_plain


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", default="http://127.0.0.1:8080/v1")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--split", default="test_3")
    ap.add_argument("--benign-splits", nargs="*", default=[],
                    help="earlier splits whose benign format requests are asked too")
    ap.add_argument("--per-template", type=int, default=8,
                    help="harmful TEST requests put into each template")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    client = OpenAI(base_url=args.upstream, api_key="unused", timeout=120)

    def ask(prompt: str) -> str:
        r = client.chat.completions.create(
            model=args.model, messages=[{"role": "user", "content": prompt}],
            temperature=0, max_tokens=args.max_tokens)
        return r.choices[0].message.content or ""

    clf = FastClassifier()
    policy = Policy.default()
    benign: list[str] = []
    for split in [*args.benign_splits, args.split]:
        path = REPO / "benchmarks" / f"style_benign_{split}.jsonl"
        benign += [json.loads(line)["text"] for line in path.read_text().splitlines() if line]
    mix = build_mix(Path(args.data_dir))
    bad = [e.text for n in HARMFUL for e in _sample(mix.test.get(n, []), 300)
           if e.role == "prompt" and e.harm == 1 and not e.id.startswith("advbench-string")]
    wrapped = []
    for i, t in enumerate(templates(f"style_templates_{args.split}.txt")):
        # a different slice of requests per template, spread over the sets
        wrapped += [fill(t, bad[(i * args.per_template + k) * 7 % len(bad)])
                    for k in range(args.per_template)]
    print(f"upstream {args.upstream} model {args.model}, max_tokens {args.max_tokens}")
    for name, prompts in (("benign format requests", benign),
                          ("harmful requests in the templates", wrapped)):
        answers = []
        for k, p in enumerate(prompts):
            answers.append(ask(p))
            if (k + 1) % 40 == 0:
                print(f"  ... {name}: {k + 1}/{len(prompts)} answered", flush=True)
        before, after, clean, plain = halted(prompts, answers, clf, policy)
        n = len(prompts)
        print(f"{name} ({n}): prompts clean {clean} ({100 * clean / n:.1f}%), clean and plain "
              f"{plain}; answers halted {before} ({100 * before / n:.1f}%) before, {after} "
              f"({100 * after / n:.1f}%) with strict_answer", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
