"""Rate-limit buckets kept in the store, so gateway replicas share them.

Each replica's own token buckets let a user through once per replica: three
replicas behind a load balancer allow three times ``--rate-limit``. With
``guardstack serve --shared-rate-limits`` the buckets live in the event store
instead: the PostgreSQL database the replicas share, or one SQLite file for
processes on one host (each ``guardstack serve`` with its own ``--spool``).

The algorithm is GCRA, the generic cell rate algorithm (as redis-cell and
many API gateways use): one row per bucket holding its *theoretical arrival
time* (TAT). A request at ``now`` is admitted when
``max(tat, now) - tolerance <= now``, with ``tolerance = (size - 1) / rate``,
and the row moves to ``max(tat, now) + 1 / rate``: the same admissions as a
token bucket of ``size`` tokens refilled at ``rate`` per second. A take is one
atomic ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING``, so two
replicas taking at once can never both have the last token. A refused take
reads the row once more to say when a request would be admitted.

Times are the replicas' own clocks (``time.time()``), which NTP keeps within
milliseconds of each other: small beside the second-scale intervals of a
rate limit. Keys are stored as sha256 hashes, never user ids. A row whose
TAT has passed is a full bucket, which needs no row: :meth:`RateBuckets.prune`
deletes them.
"""

from __future__ import annotations

import hashlib
import time

import sqlalchemy as sa

from guardstack.store.engine import Store, fast_commit_engine
from guardstack.store.schema import rate_buckets

# Admitted: the row moves on and comes back; refused: the WHERE leaves it and
# nothing comes back. Text, not Core: building the upsert per call cost more
# than the database's work.
_TAKE = """
INSERT INTO rate_buckets (key, tat) VALUES (:key, :now + :interval)
ON CONFLICT (key) DO UPDATE SET tat = {greatest}(rate_buckets.tat, :now) + :interval
WHERE {greatest}(rate_buckets.tat, :now) - :tolerance <= :now
RETURNING tat
"""
_READ = sa.text("SELECT tat FROM rate_buckets WHERE key = :key")


def bucket_key(key: str) -> str:
    """The stored form of a bucket's key (its sha256, hex)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class RateBuckets:
    """Buckets in ``store``'s database, over a small connection pool of their
    own whose commits do not wait for the disk (PostgreSQL's
    ``synchronous_commit = off``, SQLite's ``synchronous = NORMAL`` in WAL
    mode): a crash may forget the last few milliseconds of takes, which only
    lets a few requests more through, and the event writer's connections keep
    their durable commits. Call :meth:`close` when done."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine, self._own_engine = fast_commit_engine(store)
        # SQLite's two-argument max() is its scalar GREATEST.
        self._take = sa.text(_TAKE.format(
            greatest="GREATEST" if store.dialect == "postgresql" else "MAX"))

    def take(self, key: str, rate: float, size: float, now: float | None = None) -> float:
        """Take one request from the bucket ``key`` (``rate`` per second, at
        most ``size`` at once). Returns 0 when admitted, else the seconds until
        a request would be. Raises what the database raises."""
        if rate <= 0:
            return 0.0
        now = time.time() if now is None else now
        interval = 1.0 / rate
        tolerance = (max(1.0, size) - 1.0) * interval
        params = {"key": bucket_key(key), "now": now, "interval": interval,
                  "tolerance": tolerance}
        # One statement, committed on its own (the engine autocommits): one
        # round trip.
        with self.engine.connect() as conn:
            if conn.execute(self._take, params).first() is not None:
                return 0.0
            tat = conn.execute(_READ, params).scalar()
        if tat is None:  # pruned between the two statements: the bucket is full
            return 0.0
        return max(0.0, max(float(tat), now) - tolerance - now)

    def prune(self, now: float | None = None) -> int:
        """Delete the rows of full buckets (TAT in the past); returns how many."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            return int(conn.execute(rate_buckets.delete().where(rate_buckets.c.tat < now))
                       .rowcount or 0)

    def close(self) -> None:
        """Close this object's own connections (never the store's)."""
        if self._own_engine:
            self.engine.dispose()
