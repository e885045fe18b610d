"""Who is calling: API key → user and tenant, and the account state layer 3
set for that user. Both are cached for a short TTL so the store is not on
every request's path, and a state change still takes effect within seconds.

The store answers through two small protocols; an adapter for
``guardstack.store`` lives in :mod:`guardstack.gateway.store_adapter`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from guardstack.gateway.errors import GatewayError
from guardstack.gateway.outage import Outage

log = logging.getLogger("guardstack.gateway")
V = TypeVar("V")

ACCOUNT_STATES = ("ok", "warn", "rate_limited", "suspended")


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    tenant: str | None = None
    key_id: str | None = None
    #: A platform's key: the end user a request names becomes the user.
    end_users: bool = False
    #: Set for an end user: the platform account whose key made the request.
    platform: str | None = None
    #: the key's own rate limit and bucket size (None: the gateway's)
    rate_limit: float | None = None
    rate_burst: int | None = None

    def on_behalf_of(self, end_user: str) -> Identity:
        """The end user a platform key's request names, as a user of its own
        (with the key's rate limit, each end user in a bucket of their own)."""
        return Identity(user=f"{self.user}:{end_user}", tenant=self.tenant, key_id=self.key_id,
                        platform=self.user, rate_limit=self.rate_limit,
                        rate_burst=self.rate_burst)


class KeyLookup(Protocol):
    async def lookup(self, key: str) -> Identity | None: ...


class AccountStates(Protocol):
    async def get_state(self, user: str) -> str | None: ...


class StaticKeys:
    """Keys given in memory (tests, ``--open`` with fixed keys)."""

    def __init__(self, keys: dict[str, Identity] | None = None,
                 states: dict[str, str] | None = None) -> None:
        self.keys = dict(keys or {})
        self.states = dict(states or {})

    async def lookup(self, key: str) -> Identity | None:
        return self.keys.get(key)

    async def get_state(self, user: str) -> str | None:
        return self.states.get(user)


class _TTLCache(Generic[V]):
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.items: dict[str, tuple[float, V]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        hit = self.items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        if len(self.items) > 100_000:
            self.items.clear()  # a flood of random keys must not grow memory without bound
        self.items[key] = (now + self.ttl, value)
        return value


#: While the account-state store is unreachable, how often to try it again.
STATE_RETRY_S = 2.0


class Authenticator:
    def __init__(self, keys: KeyLookup | None, states: AccountStates | None, *,
                 open_mode: bool, ttl: float = 5.0) -> None:
        self.keys = keys
        self.states = states
        self.open_mode = open_mode
        self._keys: _TTLCache[Identity | None] = _TTLCache(ttl)
        self._states: _TTLCache[str] = _TTLCache(ttl)
        # Layer 3's restrictions need the store; while it is down the gateway
        # keeps serving (not the user's fault).
        self._states_outage = Outage("account states", "serving everyone as 'ok'",
                                     STATE_RETRY_S)

    async def identify(self, authorization: str | None, openai_user: str | None) -> Identity:
        key = _bearer(authorization)
        if key and self.keys is not None:
            lookup = self.keys.lookup
            # Cache by hash: raw keys never sit in memory longer than the request.
            try:
                identity = await self._keys.get(hashlib.sha256(key.encode()).hexdigest(),
                                                lambda: lookup(key))
            except Exception as exc:
                log.error("API key lookup failed: %s: %s", type(exc).__name__, exc)
                raise GatewayError(503, "API keys cannot be checked right now; retry shortly.",
                                   code="key_store_unavailable") from None
            if identity is not None:
                return identity
            if not self.open_mode:
                raise GatewayError(401, "Incorrect API key provided.", code="invalid_api_key")
        if self.open_mode:
            return Identity(user=openai_user or "anonymous")
        if authorization and authorization.strip() and not key:
            # not echoed: a key sent without its scheme would land in a log
            raise GatewayError(401, "The Authorization header is not of the form 'Bearer "
                                    "<key>' (a Basic credential, or a key without 'Bearer '); "
                                    "send 'Authorization: Bearer <key>' (or 'x-api-key: <key>', "
                                    "as Anthropic's clients do).", code="invalid_api_key")
        raise GatewayError(401, "Missing API key: send 'Authorization: Bearer <key>' "
                                "(or 'x-api-key: <key>', as Anthropic's clients do).",
                           code="invalid_api_key")

    async def state(self, user: str) -> str:
        if self.states is None:
            return "ok"
        states = self.states

        async def load() -> str:
            outage = self._states_outage
            if outage.skip():
                return "ok"  # the store is down: do not make every request wait on it
            try:
                value = await states.get_state(user)
            except Exception as exc:
                outage.failed(exc)
                return "ok"
            outage.answered()
            return value if value in ACCOUNT_STATES else "ok"

        return await self._states.get(user, load)


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
