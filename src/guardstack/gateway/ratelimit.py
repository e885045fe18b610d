"""Per-user token buckets: ``rate`` requests per second with ``burst`` at once."""

from __future__ import annotations

import math
import time


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, user: str, factor: float = 1.0, *, rate: float | None = None,
             burst: int | None = None) -> float:
        """Take one request from ``user``'s bucket. Returns 0 when allowed, else
        the seconds until a request would be allowed (for Retry-After).
        ``rate``/``burst``: this bucket's own (a key's), over the limiter's."""
        own_rate = self.rate if rate is None else rate
        if own_rate <= 0:
            return 0.0
        per_s = own_rate * factor
        size = max(1.0, (self.burst if burst is None else burst) * factor)
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

    @staticmethod
    def retry_after(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
