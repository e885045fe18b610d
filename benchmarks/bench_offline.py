"""Offline analysis (layer 3): quality on simulated traffic, and speed.

Quality, on a held-out simulation seed (never one used to tune thresholds;
the dev seeds were 11, 12, 13)::

    .venv/bin/python benchmarks/bench_offline.py --quality --seed 2026 --users 300

simulates traffic with ground truth, ingests it (scored and embedded by the
shipped classifier) into a temporary SQLite store, runs ``analyze`` and
reports, for analysis and for a per-message filter alone (a user is flagged
when any request scores >= flag_score), the share of decomposition users,
coordinated accounts, all malicious users and users at risk caught, and the
share of benign users (ordinary plus professional hard negatives) flagged.

Speed::

    .venv/bin/python benchmarks/bench_offline.py --speed --sizes 100000,300000,1000000

writes that many synthetic requests with stored scores and embeddings
straight into a temporary store (no classifier) and times ``analyze`` at
each size, so the growth with traffic shows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEV_SEEDS = (11, 12, 13)


def quality(seed: int, users: int, days: int, settings: list[str]) -> dict[str, Any]:
    from guardstack.offline.analysis import analyze
    from guardstack.offline.ingest import ingest
    from guardstack.offline.quality import evaluate
    from guardstack.offline.settings import AnalysisSettings
    from guardstack.simulate import SimulationConfig, generate, sinks
    from guardstack.store import Store

    if seed in DEV_SEEDS:
        print(f"note: seed {seed} is a development seed (thresholds were tuned on it)",
              file=sys.stderr)
    traffic = generate(SimulationConfig(users=users, days=days, seed=seed))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traffic.jsonl"
        sinks.write_jsonl(traffic.records, path)
        store = Store(f"sqlite:///{tmp}/bench.db")
        store.migrate()
        t0 = time.perf_counter()
        report = ingest(store, path, progress=False)
        t_ingest = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = analyze(store, settings=AnalysisSettings().with_overrides(settings))
        t_analyze = time.perf_counter() - t0
        store.dispose()
    flagged = set(result.flagged_raw_users())
    # accounts whose agents read the campaign's planted page (the file's tool
    # lines): found when an injection case names them (they are not flagged)
    planted = set((traffic.truth.get("injection") or {}).get("users") or ())
    reached = {u for c in result.cases if c.kind == "injection" for u in c.users}
    return {
        "seed": seed,
        "users": users,
        "days": days,
        "messages": len(traffic.records),
        "ingest_s": round(t_ingest, 1),
        # lines: the user turns, and the pages agents read (checked, not scored)
        "ingest_msgs_per_s": round(report.loaded / t_ingest, 1),
        "attacked_accounts_found": {"found": len(planted & reached), "of": len(planted)},
        "analyze_s": round(t_analyze, 1),
        "analysis": evaluate(flagged, traffic.truth),
        "per_message_baseline": evaluate(result.baseline_raw_users(), traffic.truth),
        "cases": len(result.cases),
        "clusters_shown": len(result.clusters),
    }


def speed(sizes: list[int], per_user: int, dim: int) -> list[dict[str, Any]]:
    import numpy as np

    from guardstack.offline.analysis import analyze
    from guardstack.store import Store
    from guardstack.store.schema import exchanges, messages

    out = []
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)]
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{tmp}/speed.db")
            store.migrate()
            t0 = time.perf_counter()
            start = 1_770_000_000.0
            from datetime import UTC, datetime

            batch_ex: list[dict[str, Any]] = []
            batch_msg: list[dict[str, Any]] = []


            for k in range(size):
                user = f"user{k // per_user}"
                ts = datetime.fromtimestamp(start + k * 7 % (14 * 86400) + k / size, UTC)
                emb = rng.standard_normal(dim).astype("<f4")
                emb /= np.linalg.norm(emb)
                harm = float(rng.beta(0.5, 12))
                text = " ".join(rng.choice(words, 12))
                batch_ex.append({"id": f"x{k}", "ts_start": ts, "user_id": user,
                                 "stream": False, "halted": False, "redacted": False})
                batch_msg.append({"exchange_id": f"x{k}", "idx": 0, "role": "user",
                                  "content": text, "ts": ts, "user_id": user,
                                  "conversation_id": f"s{k // 8}",
                                  "scores": {"harm": harm, "cyber": harm / 2},
                                  "embedding": emb.tobytes(), "embedding_dtype": "f32",
                                  "embedding_dim": dim})
                if len(batch_ex) == 20_000 or k == size - 1:
                    with store.engine.begin() as conn:
                        conn.execute(exchanges.insert(), batch_ex)
                        conn.execute(messages.insert(), batch_msg)
                    batch_ex.clear()
                    batch_msg.clear()
            t_fill = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = analyze(store)
            t_analyze = time.perf_counter() - t0
            store.dispose()
        row = {"messages": size, "users": size // per_user, "fill_s": round(t_fill, 1),
               "analyze_s": round(t_analyze, 1), "cases": len(result.cases)}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--seed", type=int, action="append",
                        help="simulation seed(s) (default 2026, held out)")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--per-user", type=int, default=100)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    if not (args.quality or args.speed):
        parser.error("choose --quality and/or --speed")
    os.environ.setdefault("GUARDSTACK_PSEUDONYM_KEY", "bench-only-pseudonym-key")
    if args.quality:
        for seed in args.seed or [2026]:
            print(json.dumps(quality(seed, args.users, args.days, args.set), indent=1),
                  flush=True)
    if args.speed:
        speed([int(s) for s in args.sizes.split(",")], args.per_user, args.dim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
