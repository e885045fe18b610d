"""Rate-limit buckets in the store (``serve --shared-rate-limits``), on SQLite
and a real PostgreSQL: the same admissions as the gateway's in-process token
bucket, atomic across connections, and no user id stored."""

from __future__ import annotations

import random
import threading

import pytest
import sqlalchemy as sa

from guardstack.gateway.ratelimit import RateLimiter
from guardstack.store import Store
from guardstack.store.rate_buckets import RateBuckets, bucket_key
from guardstack.store.schema import rate_buckets


@pytest.fixture
def buckets(store):
    made = RateBuckets(store)
    yield made
    made.close()


def test_admits_exactly_what_the_in_process_token_bucket_admits(buckets, monkeypatch):
    shared = buckets
    local = RateLimiter(rate=2.0, burst=3)
    clock = [1_000.0]
    monkeypatch.setattr("guardstack.gateway.ratelimit.time.monotonic", lambda: clock[0])
    rng = random.Random(7)
    decisions = []
    for _ in range(200):
        clock[0] += rng.choice((0.0, 0.01, 0.1, 0.3, 0.7, 2.5)) + rng.random() / 1000
        ours = shared.take("ann", 2.0, 3, now=clock[0])
        theirs = local.take("ann")
        decisions.append(ours == 0)
        assert (ours == 0) == (theirs == 0)
        assert ours == pytest.approx(theirs, abs=1e-6)
    assert 20 < sum(decisions) < 180  # the schedule exercised both answers


def test_buckets_are_per_key_and_refill(buckets):
    b = buckets
    assert [b.take("ann", 1.0, 2, now=10.0) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert b.take("ben", 1.0, 2, now=10.0) == 0.0
    assert b.take("ann", 1.0, 2, now=11.0) == 0.0
    assert b.take("ann", 0, 2, now=11.0) == 0.0  # rate 0: no limit


def test_replicas_taking_at_once_never_share_the_last_token(db_url):
    # Eight "replicas", each with its own engine, take from one bucket at once.
    stores = [Store(db_url) for _ in range(8)]
    stores[0].migrate()
    admitted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(stores))

    def replica(s: Store) -> None:
        b = RateBuckets(s)
        start.wait()
        got = sum(1 for _ in range(6) if b.take("shared-user", 1e-6, 5) == 0)
        b.close()
        with lock:
            admitted.append(got)

    threads = [threading.Thread(target=replica, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.dispose()
    assert len(admitted) == 8 and sum(admitted) == 5


def test_rows_hold_no_user_id_and_full_buckets_are_pruned(store, buckets):
    b = buckets
    b.take("alice@example.com", 1.0, 1, now=100.0)
    b.take("bob", 0.1, 1, now=100.0)
    with store.engine.connect() as conn:
        rows = dict(conn.execute(sa.select(rate_buckets.c.key, rate_buckets.c.tat)).all())
    assert set(rows) == {bucket_key("alice@example.com"), bucket_key("bob")}
    assert not any("alice" in k for k in rows)
    assert b.prune(now=105.0) == 1  # alice's bucket is full again; bob's is not
    assert b.take("bob", 0.1, 1, now=105.0) == pytest.approx(5.0)


async def test_the_gateways_limiter_deletes_full_buckets_as_it_goes(store):
    from guardstack.gateway.ratelimit import SharedRateLimiter

    limiter = SharedRateLimiter(rate=1.0, burst=1, buckets=RateBuckets(store))
    try:
        limiter.shared.take("long-gone", 1.0, 1, now=100.0)  # full again since 101.0
        limiter.pruning.next_at = 0.0  # the minute between deletions has passed
        assert await limiter.admit("ann") == 0.0
        with store.engine.connect() as conn:
            keys = set(conn.execute(sa.select(rate_buckets.c.key)).scalars())
        assert keys == {bucket_key("ann")}
    finally:
        limiter.close()
