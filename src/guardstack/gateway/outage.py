"""A store the gateway can serve without for a while (account states, shared
rate limits, shared stored responses): while it fails, requests are not made
to wait on it, the outage is logged once rather than per request, it is
asked again every ``retry_s`` seconds, and its return is logged with how
long it was away. :class:`Pruning` deletes a shared table's dead rows now
and then."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("guardstack.gateway")
T = TypeVar("T")

#: Seconds a shared store that failed is left alone before it is asked again.
STORE_RETRY_S = 5.0
#: Seconds between deletions of a shared table's dead rows.
PRUNE_EVERY_S = 60.0


class Outage:
    def __init__(self, what: str, meanwhile: str, retry_s: float = STORE_RETRY_S) -> None:
        #: "account states"; what the gateway does meanwhile: "serving everyone as 'ok'"
        self.what = what
        self.meanwhile = meanwhile
        self.retry_s = retry_s
        #: monotonic time before which the store is not asked (it is down)
        self.down_until = 0.0
        self.down_since: float | None = None

    def skip(self) -> bool:
        """True while the store is left alone after a failure."""
        return time.monotonic() < self.down_until

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.down_until = now + self.retry_s
        if self.down_since is None:
            self.down_since = now
            cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("%s unavailable, %s until the store answers: %s",
                        self.what, self.meanwhile, cause)

    def answered(self) -> None:
        if self.down_since is not None:
            log.warning("%s available again after %.0f s", self.what,
                        time.monotonic() - self.down_since)
            self.down_since = None

    async def ask(self, call: Callable[..., T], *args: Any) -> tuple[bool, T | None]:
        """``call(*args)`` in a worker thread, unless the store is being left
        alone: ``(True, its result)``, or ``(False, None)`` when it was not
        asked or failed (the failure noted as above)."""
        if self.skip():
            return False, None
        try:
            value = await asyncio.to_thread(call, *args)
        except Exception as exc:
            self.failed(exc)
            return False, None
        self.answered()
        return True, value


class Pruning:
    """Deletes a shared table's dead rows (full rate-limit buckets, expired
    answers) at most every ``every_s`` seconds, in a request that has just
    reached the store. A failed prune is logged and tried again next time;
    it says nothing about the store being down."""

    def __init__(self, what: str, every_s: float = PRUNE_EVERY_S) -> None:
        self.what = what  # "full rate-limit buckets"
        self.every_s = every_s
        #: monotonic time from which the next request prunes
        self.next_at = time.monotonic() + every_s

    async def maybe(self, prune: Callable[[], object]) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + self.every_s
        try:
            await asyncio.to_thread(prune)
        except Exception as exc:
            log.warning("could not delete %s: %s: %s", self.what, type(exc).__name__, exc)
