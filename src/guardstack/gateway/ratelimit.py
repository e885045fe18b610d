"""Per-user token buckets: ``rate`` requests per second with ``burst`` at once.

:class:`RateLimiter` keeps them in this process. :class:`SharedRateLimiter`
(``serve --shared-rate-limits``) keeps them in the event store, so gateway
replicas share each user's limit (:mod:`guardstack.store.rate_buckets`), and
falls back to this process's own buckets while the store does not answer.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from guardstack.gateway.outage import Outage, Pruning

if TYPE_CHECKING:
    from guardstack.store.rate_buckets import RateBuckets


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.buckets: dict[str, tuple[float, float]] = {}

    def shape(self, factor: float, rate: float | None, burst: int | None
              ) -> tuple[float, float]:
        """(requests per second, bucket size) of one bucket: the key's own
        ``rate``/``burst`` over the limiter's, times the account's ``factor``."""
        per_s = (self.rate if rate is None else rate) * factor
        size = max(1.0, (self.burst if burst is None else burst) * factor)
        return per_s, size

    def take(self, user: str, factor: float = 1.0, *, rate: float | None = None,
             burst: int | None = None) -> float:
        """Take one request from ``user``'s bucket. Returns 0 when allowed, else
        the seconds until a request would be allowed (for Retry-After).
        ``rate``/``burst``: this bucket's own (a key's), over the limiter's."""
        per_s, size = self.shape(factor, rate, burst)
        if per_s <= 0:
            return 0.0
        now = time.monotonic()
        if len(self.buckets) > 100_000:
            # Full buckets carry no state worth keeping; drop them to bound memory.
            self.buckets = {u: b for u, b in self.buckets.items()
                            if b[0] + (now - b[1]) * self.rate < self.burst}
        tokens, last = self.buckets.get(user, (size, now))
        tokens = min(size, tokens + (now - last) * per_s)
        if tokens >= 1.0:
            self.buckets[user] = (tokens - 1.0, now)
            return 0.0
        self.buckets[user] = (tokens, now)
        return (1.0 - tokens) / per_s

    async def admit(self, user: str, factor: float = 1.0, *, rate: float | None = None,
                    burst: int | None = None) -> float:
        """:meth:`take`, as the gateway calls it (a shared limiter awaits its store)."""
        return self.take(user, factor, rate=rate, burst=burst)

    def close(self) -> None:
        """Let go of what the limiter holds (a shared one: its connections)."""

    @staticmethod
    def retry_after(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))


class SharedRateLimiter(RateLimiter):
    """The same limits, with the buckets in the store. While the store fails,
    this process's own buckets decide (each replica then allows the limit on
    its own, as without sharing), the outage is logged once, and the store is
    asked again every :data:`~guardstack.gateway.outage.STORE_RETRY_S` seconds."""

    def __init__(self, rate: float, burst: int, buckets: RateBuckets) -> None:
        super().__init__(rate, burst)
        self.shared = buckets
        self.outage = Outage("shared rate limits", "limiting in this process")
        self.pruning = Pruning("full rate-limit buckets")

    async def admit(self, user: str, factor: float = 1.0, *, rate: float | None = None,
                    burst: int | None = None) -> float:
        per_s, size = self.shape(factor, rate, burst)
        if per_s <= 0:
            return 0.0
        _, wait = await self.outage.ask(self.shared.take, user, per_s, size)
        if wait is None:  # the store did not answer: this process's own bucket decides
            return self.take(user, factor, rate=rate, burst=burst)
        await self.pruning.maybe(self.shared.prune)  # the take stands whatever it does
        return wait

    def close(self) -> None:
        self.shared.close()
