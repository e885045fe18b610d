"""A store the gateway can serve without for a while (account states, shared
rate limits): while it fails, requests are not made to wait on it, the
outage is logged once rather than per request, it is asked again every
``retry_s`` seconds, and its return is logged with how long it was away."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("guardstack.gateway")


class Outage:
    def __init__(self, what: str, meanwhile: str, retry_s: float) -> None:
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
