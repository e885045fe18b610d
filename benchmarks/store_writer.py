"""Throughput of the event store's EventWriter: events/s from submit() to commit.

    python benchmarks/store_writer.py                       # SQLite in a temp dir
    python benchmarks/store_writer.py --db postgresql://... # an (empty) PostgreSQL database
    python benchmarks/store_writer.py --events 20000 --embedding-dim 384

Each event is one exchange with a user message (with a float32 embedding) and
an assistant message, as the gateway records them.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from guardstack.store import EventWriter, ExchangeEvent, MessageRecord, Store


def event(i: int, dim: int) -> ExchangeEvent:
    vec = [random.random() for _ in range(dim)]
    return ExchangeEvent(
        user=f"user{i % 500}",
        tenant="bench",
        conversation_id=f"conv{i % 2000}",
        model="bench-model",
        endpoint="/v1/chat/completions",
        total_ms=100.0,
        messages=[
            MessageRecord(
                role="user",
                content=f"Question number {i} about geography?",
                decision="allow",
                scores={"harm": 0.01},
                embedding=vec,
            ),
            MessageRecord(role="assistant", content="An answer of moderate length. " * 8),
        ],
    )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=None)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--embedding-dim", type=int, default=384)
    ap.add_argument("--batch-size", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store(url)
        store.migrate()
        events = [event(i, args.embedding_dim) for i in range(args.events)]
        writer = EventWriter(store, batch_size=args.batch_size, spool_path=Path(tmp) / "s.jsonl")
        await writer.start()
        t0 = time.perf_counter()
        submit_max = 0.0
        for e in events:
            s0 = time.perf_counter()
            await writer.submit(e)
            submit_max = max(submit_max, time.perf_counter() - s0)
        await writer.close()
        elapsed = time.perf_counter() - t0
        store.dispose()
        print(
            f"backend={store.dialect} events={args.events} dim={args.embedding_dim} "
            f"batch={args.batch_size}: {args.events / elapsed:,.0f} events/s "
            f"({elapsed:.2f} s), written={writer.written}, spooled={writer.spooled_total}, "
            f"slowest submit {submit_max * 1000:.1f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
