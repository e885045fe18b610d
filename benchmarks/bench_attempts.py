"""How specific layer 3's jailbreak-attempt signal is, on real data.

    .venv/bin/python benchmarks/bench_attempts.py [--data-dir ../shared/data]

For every row of every set in the data directory: does it use an adversarial
jailbreak tactic (``guardstack.framing.tactics``, the families
``guardstack.offline.attempts`` counts), and if so, does the shipped classifier
score it at or above ``attempt_score`` (an *attempt*)? Prints, per set and
label, rows / with a tactic / attempts, and the totals over safe rows.
JailbreakBench's ``safe`` rows are attack prompts whose answer was judged
not jailbroken, so they are counted apart from the benign rows. Only rows
with a tactic are scored, so the run takes about two minutes.

Then what it costs: ``framing.adversarial_tactics`` per prompt (the gateway reads every
judged prompt with it), median over the benign rows of a few sets, beside
the fast classifier's own time for one prompt in the same run; and the
attempts monitor over 1,000 users of 100 stored requests each, the shape of
``bench_offline.py --speed``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Sets whose "safe" rows are attacks judged by their answer, not benign prompts.
ATTACKS_LABELLED_BY_ANSWER = {"jailbreakbench"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from guardstack.framing import adversarial_tactics
    from guardstack.offline.scoring import Scorer
    from guardstack.offline.settings import AnalysisSettings

    files = sorted(args.data_dir.glob("*/*.jsonl"))
    if not files:
        print(f"no data under {args.data_dir}", file=sys.stderr)
        return 2
    rows: Counter[tuple[str, str]] = Counter()
    used: Counter[tuple[str, str]] = Counter()
    texts: list[tuple[str, str, str]] = []
    for path in files:
        name = path.parent.name
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                text, label = row.get("text") or "", str(row.get("label"))
                rows[name, label] += 1
                if adversarial_tactics(text):
                    used[name, label] += 1
                    texts.append((name, label, text))
    threshold = AnalysisSettings().attempt_score
    scored = Scorer().score([t for _, _, t in texts])
    attempts: Counter[tuple[str, str]] = Counter()
    for (name, label, _), result in zip(texts, scored, strict=True):
        if (result.scores or {}).get("harm", 0.0) >= threshold:
            attempts[name, label] += 1
    print(f"{'set':28s} {'label':7s} {'rows':>8s} {'tactic':>7s} {'attempt':>8s}")
    for key in sorted(rows):
        if used[key]:
            print(f"{key[0]:28s} {key[1]:7s} {rows[key]:8d} {used[key]:7d} {attempts[key]:8d}")
    benign = [k for k in rows if k[1] == "safe" and k[0] not in ATTACKS_LABELLED_BY_ANSWER]
    print(f"\nsafe rows (benign prompts): {sum(rows[k] for k in benign)}, "
          f"with an adversarial tactic: {sum(used[k] for k in benign)}, "
          f"attempts (tactic and harm >= {threshold:g}): {sum(attempts[k] for k in benign)}")
    _cost(args.data_dir)
    return 0


def _cost(data_dir: Path) -> None:
    import statistics
    import time

    import numpy as np

    from guardstack.framing import adversarial_tactics
    from guardstack.guard import Guard
    from guardstack.offline.attempts import find_attempts
    from guardstack.offline.corpus import LABELS, UserHistory
    from guardstack.offline.settings import AnalysisSettings

    texts: list[str] = []
    for name in ("or_bench_hard", "nq_open", "alpaca_instructions", "coconot"):
        with (data_dir / name / f"{name}.jsonl").open(encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh][:500]
    per_prompt = []
    for text in texts:
        start = time.perf_counter()
        adversarial_tactics(text)
        per_prompt.append((time.perf_counter() - start) * 1e6)
    guard = Guard()
    guard.check(texts[0])  # load
    checks = []
    for text in texts[:200]:
        start = time.perf_counter()
        guard.check(text)
        checks.append((time.perf_counter() - start) * 1e6)
    tactic_us, check_us = statistics.median(per_prompt), statistics.median(checks)
    print(f"tactics per prompt: median {tactic_us:.1f} us over {len(texts)} prompts; "
          f"Guard.check {check_us:.0f} us in the same run ({tactic_us / check_us:.2%})")
    rng = np.random.default_rng(0)
    settings = AnalysisSettings()
    histories = []
    for u in range(1000):
        scores = np.zeros((100, len(LABELS)), dtype=np.float32)
        scores[:, 0] = rng.beta(0.5, 12, 100)
        histories.append(UserHistory(f"u{u}", np.arange(100), ["s"] * 100,
                                     np.arange(100, dtype=float), rng.choice(texts, 100).tolist(),
                                     scores, np.zeros((100, 4), dtype=np.float32)))
    start = time.perf_counter()
    for h in histories:
        find_attempts(h, settings)
    print(f"attempts monitor over 100,000 stored requests (1,000 users): "
          f"{(time.perf_counter() - start) * 1000:.1f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
