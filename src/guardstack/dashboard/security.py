"""HTTP hardening for the dashboard: response headers, CSRF checks, and a
per-client limit on login attempts (the per-account lockout is in
:mod:`guardstack.dashboard.staff`)."""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from typing import Any

# Scripts only from our own origin: a stored payload that slipped through
# escaping still could not run. Inline styles are allowed for the chart
# library's canvas sizing; styles cannot execute code.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """ASGI middleware: the headers above on every response, and no caching
    of pages (they hold what people wrote)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = "/static/" in scope.get("path", "")

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", [])
                           if h[0].lower() not in {k for k, _ in HEADERS}]
                headers += HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def same_token(given: Any, expected: str) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(
        given.encode("utf-8"), expected.encode("utf-8"))


class LoginLimiter:
    """At most ``attempts`` login attempts per client per ``window`` seconds."""

    def __init__(self, attempts: int = 20, window: float = 300.0) -> None:
        self.attempts, self.window = attempts, window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()
            q = self._seen.setdefault(client, deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.attempts:
                return False
            q.append(now)
            return True
