"""What keeping Responses API answers in the store costs per answer.

    .venv/bin/python benchmarks/bench_shared_responses.py [--pg URL] [--n 2000] [--repeats 5]

Does what the gateway does for each answer of a Responses API chain
(``await stored.remember(...)`` before the client has the answer's end) with
the in-process store (the baseline) and with ``--shared-responses`` on a
SQLite file and, given ``--pg`` (or ``$GUARDSTACK_TEST_PG_URL``), on
PostgreSQL; then what a replica that did not make an answer does to continue
it (``await stored.recall(...)`` of an id it does not hold: a read from the
store). Alternated, ``--repeats`` times; each answer is a six-message
conversation of about 2 kB. Prints median microseconds per call and the ratio
to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TURN = ("Could you summarise the main causes of the 1929 stock market crash and how "
        "they compare with 2008? ") * 3


async def _remember(stored, ids: list[str], entry) -> float:
    start = time.perf_counter()
    for rid in ids:
        await stored.remember(rid, entry)
    return (time.perf_counter() - start) / len(ids) * 1e6


async def _recall(stored, ids: list[str]) -> float:
    start = time.perf_counter()
    for rid in ids:
        assert await stored.recall(rid, "user-1") is not None
    return (time.perf_counter() - start) / len(ids) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default=os.environ.get("GUARDSTACK_TEST_PG_URL"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from guardstack.gateway.stored_responses import SharedStoredResponses, Stored, StoredResponses
    from guardstack.store import Store
    from guardstack.store.stored_responses import SharedResponses

    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": TURN}
                for i in range(6)]
    entry = Stored("user-1", messages, "resp_chain")
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"sqlite": f"sqlite:///{tmp}/bench.db"}
        if args.pg:
            urls["postgresql"] = args.pg
        makers = {"in process": lambda: (StoredResponses(10 * args.n), None)}
        for name, url in urls.items():
            with Store(url) as store:
                store.migrate()

            def make(url: str = url) -> tuple[StoredResponses, Store]:
                store = Store(url)
                return SharedStoredResponses(10 * args.n, SharedResponses(store, 3600)), store

            makers[f"shared, {name}"] = make
        writes: dict[str, list[float]] = {name: [] for name in makers}
        reads: dict[str, list[float]] = {name: [] for name in makers if name != "in process"}
        for _ in range(args.repeats):
            for name, make in makers.items():
                writer, store = make()
                ids = [f"resp_{uuid.uuid4().hex}" for _ in range(args.n)]
                writes[name].append(asyncio.run(_remember(writer, ids, entry)))
                writer.close()
                if name in reads:  # another replica: nothing of these ids in its memory
                    reader, other = make()
                    reads[name].append(asyncio.run(_recall(reader, ids)))
                    reader.close()
                    other.dispose()
                if store is not None:
                    store.dispose()
        base = statistics.median(writes["in process"])
        print(f"{'store':22s} {'remember, median us':>20s} {'x in process':>13s} "
              f"{'recall elsewhere, us':>21s}")
        for name, values in writes.items():
            median = statistics.median(values)
            read = f"{statistics.median(reads[name]):21.1f}" if name in reads else f"{'-':>21s}"
            print(f"{name:22s} {median:20.1f} {median / base:13.1f} {read}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
