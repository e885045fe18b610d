"""What sharing rate limits through the store costs per request.

    .venv/bin/python benchmarks/bench_ratelimit.py [--pg URL] [--n 3000] [--repeats 5]

Admits ``--n`` requests from 300 users, as the gateway does (``await
limiter.admit(...)``), with the in-process token buckets (the baseline) and
with ``--shared-rate-limits`` on a SQLite file and, given ``--pg`` (or
``$GUARDSTACK_TEST_PG_URL``), on PostgreSQL; alternated, ``--repeats`` times.
Prints the median microseconds per admission of each and its ratio to the
baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


async def _run(limiter, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        await limiter.admit(f"user-{i % 300}")
    return (time.perf_counter() - start) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default=os.environ.get("GUARDSTACK_TEST_PG_URL"))
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from guardstack.gateway.ratelimit import RateLimiter, SharedRateLimiter
    from guardstack.store import Store
    from guardstack.store.rate_buckets import RateBuckets

    rate, burst = 1000.0, 2000  # never refuses: every admission does the full work
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"sqlite": Store(f"sqlite:///{tmp}/bench.db")}
        if args.pg:
            stores["postgresql"] = Store(args.pg)
        limiters = {"in process": RateLimiter(rate, burst)}
        for name, store in stores.items():
            store.migrate()
            limiters[f"shared, {name}"] = SharedRateLimiter(rate, burst, RateBuckets(store))
        times: dict[str, list[float]] = {name: [] for name in limiters}
        for _ in range(args.repeats):
            for name, limiter in limiters.items():
                times[name].append(asyncio.run(_run(limiter, args.n)))
        base = statistics.median(times["in process"])
        print(f"{'limiter':24s} {'median us/request':>18s} {'x in process':>13s}")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:24s} {median:18.1f} {median / base:13.1f}")
        for store in stores.values():
            store.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
