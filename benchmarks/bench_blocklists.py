"""What a policy's blocklists cost per judged text, and how often the built-in
lists match ordinary text.

Run: .venv/bin/python benchmarks/bench_blocklists.py [--n 500] [--repeats 5] [--classifier 300]

Speed: ``Policy.decide`` on the same stored detection for each text, the
policy without lists (the baseline, timed in the same run, alternated) and
with the example lists of docs/policy.md (two term/pattern lists, the
``credentials`` and ``pii`` built-ins), and with one list of 10,000 terms.
Reports the median microseconds per text over the repeats and the
difference, and for scale what ``Guard.check`` (the classifier) takes per
text on a sample of the same texts. Masking: ``Policy.mask`` on each text
with the masking example of docs/policy.md (``pii`` and ``credentials``,
one term list), against the policy without lists.

Matches: the share of texts of each set that the built-in ``credentials``
and ``pii`` lists match (prompts people send, code, jailbreak templates):
a false alarm rate for ``credentials`` everywhere, and for ``pii`` wherever
the set holds no personal data.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from guardstack.blocklists import BUILTIN
from guardstack.classifiers.base import Detection
from guardstack.policy import Policy

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("nq_open", "alpaca_instructions", "gsm8k", "humaneval", "mt_bench", "or_bench_hard",
        "coconot", "jailbreak_llms", "toxicchat_train")
DOC = Path(__file__).resolve().parents[1] / "docs" / "policy.md"


def texts(name: str, n: int) -> list[str]:
    path = DATA / name / f"{name}.jsonl"
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            text = row.get("text") or row.get("response")
            if isinstance(text, str) and text.strip():
                out.append(text)
            if len(out) >= n:
                break
    return out


def example_policy(heading: str = "## Blocklists") -> Policy:
    section = DOC.read_text("utf-8").split(heading, 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    # Every list on both roles, so each text meets all four.
    example = example.replace("roles: [prompt]", "roles: [prompt, response]")
    example = example.replace("roles: [response]", "roles: [prompt, response]")
    return Policy.from_yaml("version: 1\n" + example, source="docs/policy.md")


def per_text_us(policy: Policy, corpus: list[str], det: Detection) -> float:
    start = time.perf_counter()
    for text in corpus:
        policy.decide("prompt", det, "fast", text=text)
    return (time.perf_counter() - start) / len(corpus) * 1e6


def per_text_mask_us(policy: Policy, corpus: list[str]) -> float:
    start = time.perf_counter()
    for text in corpus:
        policy.mask("prompt", text)
    return (time.perf_counter() - start) / len(corpus) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="texts per set")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--classifier", type=int, default=300, metavar="N",
                    help="also time Guard.check on N of the texts, for scale (0: skip)")
    args = ap.parse_args()
    sets = {name: texts(name, args.n) for name in SETS if (DATA / name).exists()}
    corpus = [t for ts in sets.values() for t in ts]
    det = Detection(scores={"harm": 0.01}, latency_ms=1.0)
    bare = Policy.from_yaml("version: 1\n", source="bare")
    lists = example_policy()
    # A large list: 10,000 made-up two-word terms (none in the texts).
    big = Policy.from_yaml("version: 1\nblocklists:\n  big:\n    terms: ["
                           + ", ".join(f"zq{i:05d} item" for i in range(10_000)) + "]\n",
                           source="big")
    masking = example_policy("### Masking")
    base, with_lists, with_big, mask_base, with_mask = [], [], [], [], []
    for _ in range(args.repeats):
        base.append(per_text_us(bare, corpus, det))
        with_lists.append(per_text_us(lists, corpus, det))
        with_big.append(per_text_us(big, corpus, det))
        mask_base.append(per_text_mask_us(bare, corpus))
        with_mask.append(per_text_mask_us(masking, corpus))
    b, w = statistics.median(base), statistics.median(with_lists)
    g = statistics.median(with_big)
    mb, mw = statistics.median(mask_base), statistics.median(with_mask)
    masked = sum(bool(masking.mask("prompt", t).counts) for t in corpus)
    chars = statistics.median(len(t) for t in corpus)
    print(f"{len(corpus)} texts from {len(sets)} sets (median {chars:.0f} characters), "
          f"{args.repeats} repeats, medians:")
    print(f"  decide, no lists (baseline):      {b:8.1f} us per text")
    print(f"  decide, the four example lists:   {w:8.1f} us per text "
          f"(+{w - b:.1f} us, ratio {w / b:.2f})")
    print(f"  decide, one list of 10,000 terms: {g:8.1f} us per text (+{g - b:.1f} us)")
    print(f"  mask, no lists (baseline):        {mb:8.1f} us per text")
    print(f"  mask, the masking example lists:  {mw:8.1f} us per text (+{mw - mb:.1f} us); "
          f"{masked} of {len(corpus)} texts changed")
    if args.classifier:
        from guardstack import Guard

        guard = Guard()
        sample = corpus[:: max(1, len(corpus) // args.classifier)]
        guard.check(sample[0])
        start = time.perf_counter()
        for text in sample:
            guard.check(text)
        c = (time.perf_counter() - start) / len(sample) * 1e6
        print(f"  for scale, Guard.check (classifier and decide) on {len(sample)} of the texts: "
              f"{c:8.1f} us per text; the example lists add {(w - b) / c:.1%}, "
              f"masking {(mw - mb) / c:.1%}")
    print("built-in lists matching ordinary texts:")
    for name, ts in sets.items():
        creds = sum(BUILTIN["credentials"](t) is not None for t in ts)
        pii = sum(BUILTIN["pii"](t) is not None for t in ts)
        print(f"  {name:22s} n={len(ts):5d}  credentials {creds:4d} ({creds / len(ts):6.2%})"
              f"  pii {pii:4d} ({pii / len(ts):6.2%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
