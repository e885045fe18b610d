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
    from guardstack.framing import tactics
    from guardstack.offline.attempts import ADVERSARIAL
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
                if set(tactics(text)) & ADVERSARIAL:
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
