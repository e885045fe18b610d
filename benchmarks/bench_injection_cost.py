"""The injection rules' cost against an earlier version of them, in one process.

    .venv/bin/python benchmarks/bench_injection_cost.py [--ref HEAD~1] [--repeats 5]
        [--languages nl pl fr ...]

Machines here are too noisy to compare two runs: this copies
``guardstack/injection.py`` and ``guardstack/injection_languages.py`` as they
were at ``--ref`` (``git show``) under other module names, and times
``scan(text, other_languages=True)`` of both versions alternated text by
text over 500 GPTeacher answers (at least 200 characters), the order of the
two swapped every repeat. Prints the median milliseconds per KB of each and
their ratio. ``--languages``: also, per language, over 100 documents of 12
Multilingual HateCheck cases each (about 1 KB; pages in that language).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from guardstack.injection import scan  # noqa: E402

DATA = REPO.parent / "shared" / "data"


def earlier_scan(ref: str, into: Path):
    """``scan`` of the rules at git ``ref``, imported as ``earlier_injection``."""
    for name in ("injection", "injection_languages"):
        text = subprocess.run(["git", "show", f"{ref}:src/guardstack/{name}.py"], cwd=REPO,
                              check=True, capture_output=True, text=True).stdout
        text = text.replace("from guardstack import injection_languages as languages",
                            "import earlier_injection_languages as languages")
        (into / f"earlier_{name}.py").write_text(text)
    sys.path.insert(0, str(into))
    spec = importlib.util.spec_from_file_location("earlier_injection",
                                                  into / "earlier_injection.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["earlier_injection"] = module
    spec.loader.exec_module(module)
    return module.scan


def paired(before, texts: list[str], repeats: int) -> tuple[float, float]:
    """Median ms per KB of the earlier and the current ``scan``, alternated."""
    cost: dict[str, list[float]] = {"earlier": [], "now": []}
    for rep in range(repeats):
        pair = [("earlier", before), ("now", scan)]
        for text in texts:
            kb = len(text.encode()) / 1024
            for name, fn in pair if rep % 2 == 0 else pair[::-1]:
                t0 = time.perf_counter()
                fn(text, other_languages=True)
                cost[name].append((time.perf_counter() - t0) * 1000 / kb)
    return statistics.median(cost["earlier"]), statistics.median(cost["now"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ref", default="HEAD~1")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--languages", nargs="*", default=[])
    args = p.parse_args()
    rows = [json.loads(line) for line in (DATA / "gpteacher" / "gpteacher.jsonl").open()]
    texts = [t for t in (r["meta"].get("response") or "" for r in rows) if len(t) >= 200][:500]
    cases = [json.loads(line) for line in
             (DATA / "multilingual_hatecheck" / "multilingual_hatecheck.jsonl").open()] \
        if args.languages else []
    with tempfile.TemporaryDirectory() as tmp:
        before = earlier_scan(args.ref, Path(tmp))
        a, b = paired(before, texts, args.repeats)
        print(f"rules at {args.ref}: {a:.3f} ms per KB; now: {b:.3f} ms per KB; ratio "
              f"{b / a:.2f} ({len(texts)} GPTeacher answers, {args.repeats} repeats, alternated)")
        for lang in args.languages:
            mine = [r["text"] for r in cases if r["meta"]["lang"] == lang]
            if not mine:
                print(f"{lang}: no Multilingual HateCheck cases")
                continue
            docs = [" ".join(mine[i:i + 12]) for i in range(0, min(len(mine), 1200), 12)]
            a, b = paired(before, docs, max(1, args.repeats // 2))
            print(f"{lang}: {a:.3f} -> {b:.3f} ms per KB, ratio {b / a:.2f} ({len(docs)} pages)")


if __name__ == "__main__":
    main()
