"""API keys: issued once in plaintext, stored only as sha256 hashes.

A key is ``gs-`` + 43 url-safe random characters (256 bits). Its sha256 is
the lookup key, so :meth:`KeyStore.lookup` is one indexed query with no
secret-dependent string comparison in Python; the first 11 characters are
kept as a display prefix. Lookups are cached for ``cache_ttl`` seconds (a
revocation in another process takes effect within that time; in this
process at once).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from guardstack.store import audit
from guardstack.store.engine import Store
from guardstack.store.errors import StoreError, describe
from guardstack.store.events import utcnow
from guardstack.store.schema import api_keys

KEY_PREFIX = "gs-"
DISPLAY_PREFIX_LEN = 11
_CACHE_MAX = 10_000


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    prefix: str
    user: str
    tenant: str | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    #: The caller is a platform that names its end users; each is a user of its own.
    end_users: bool = False
    #: requests per second and bucket size for this key's users (None: the gateway's)
    rate_limit: float | None = None
    rate_burst: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def _info(row: sa.RowMapping) -> KeyInfo:
    return KeyInfo(
        id=row["id"],
        prefix=row["prefix"],
        user=row["user_id"],
        tenant=row["tenant_id"],
        name=row["name"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        end_users=bool(row["end_users"]),
        rate_limit=row["rate_limit"],
        rate_burst=row["rate_burst"],
    )


class KeyStore:
    def __init__(self, store: Store | str | None = None, *, cache_ttl: float = 5.0) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.cache_ttl = cache_ttl
        self._cache: OrderedDict[str, tuple[float, KeyInfo | None]] = OrderedDict()
        self._lock = threading.Lock()

    def create(
        self, user: str, *, tenant: str | None = None, name: str | None = None,
        end_users: bool = False, actor: str = "cli", rate_limit: float | None = None,
        rate_burst: int | None = None
    ) -> tuple[str, KeyInfo]:
        """Issue a key for ``user``. Returns ``(plaintext, info)``; the
        plaintext is not stored anywhere and cannot be shown again.
        ``end_users``: the caller is a platform whose requests name their end
        user (the gateway then attributes each to ``user:end-user``)."""
        if not user or not user.strip():
            raise ValueError("a key needs a user id")
        _check_limits(rate_limit, rate_burst)
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        info = KeyInfo(
            id=uuid.uuid4().hex,
            prefix=plaintext[:DISPLAY_PREFIX_LEN],
            user=user,
            tenant=tenant,
            name=name,
            created_at=utcnow(),
            revoked_at=None,
            end_users=end_users,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
        )
        try:
            with self.store.engine.begin() as conn:
                conn.execute(
                    api_keys.insert().values(
                        id=info.id,
                        key_hash=hash_key(plaintext),
                        prefix=info.prefix,
                        user_id=user,
                        tenant_id=tenant,
                        name=name,
                        created_at=info.created_at,
                        end_users=end_users,
                        rate_limit=rate_limit,
                        rate_burst=rate_burst,
                    )
                )
                audit.record(
                    conn,
                    actor=actor,
                    action="key.create",
                    subject_user=user,
                    detail={"key_id": info.id, "prefix": info.prefix, "name": name,
                            "end_users": end_users, "rate_limit": rate_limit,
                            "rate_burst": rate_burst},
                )
        except sa_exc.SQLAlchemyError as exc:
            raise describe(exc, self.store.url) from None
        return plaintext, info

    def lookup(self, plaintext: str) -> KeyInfo | None:
        """The key's owner, or None for an unknown or revoked key."""
        if not plaintext:
            return None
        digest = hash_key(plaintext)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(digest)
                return hit[1]
        with self.store.engine.connect() as conn:
            row = (
                conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == digest))
                .mappings()
                .first()
            )
        info = _info(row) if row is not None else None
        if info is not None and info.revoked:
            info = None
        with self._lock:
            self._cache[digest] = (now + self.cache_ttl, info)
            self._cache.move_to_end(digest)
            while len(self._cache) > _CACHE_MAX:
                self._cache.popitem(last=False)
        return info

    async def alookup(self, plaintext: str) -> KeyInfo | None:
        """:meth:`lookup` without blocking the event loop on a cache miss."""
        digest = hash_key(plaintext) if plaintext else ""
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        return await asyncio.to_thread(self.lookup, plaintext)

    def get(self, key_id: str) -> KeyInfo:
        with self.store.engine.connect() as conn:
            row = (
                conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
            )
        if row is None:
            raise StoreError(f"no API key with id {key_id!r}")
        return _info(row)

    def list_keys(self, *, user: str | None = None, include_revoked: bool = True) -> list[KeyInfo]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if user is not None:
            query = query.where(api_keys.c.user_id == user)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        try:
            with self.store.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
        except sa_exc.SQLAlchemyError as exc:
            raise describe(exc, self.store.url) from None
        return [_info(r) for r in rows]

    def set_limits(self, key_id: str, *, rate_limit: float | None, rate_burst: int | None,
                   actor: str = "cli") -> KeyInfo:
        """Give a key its own rate limit (None: the gateway's again). The
        gateway sees it once its key cache (``--state-ttl``) expires."""
        _check_limits(rate_limit, rate_burst)
        try:
            with self.store.engine.begin() as conn:
                row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)
                                   ).mappings().first()
                if row is None:
                    raise StoreError(f"no API key with id {key_id!r}")
                conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(
                    rate_limit=rate_limit, rate_burst=rate_burst))
                audit.record(conn, actor=actor, action="key.limits",
                             subject_user=row["user_id"],
                             detail={"key_id": key_id, "rate_limit": rate_limit,
                                     "rate_burst": rate_burst})
        except sa_exc.SQLAlchemyError as exc:
            raise describe(exc, self.store.url) from None
        with self._lock:
            self._cache.clear()
        return self.get(key_id)

    def revoke(self, key_id: str, *, actor: str = "cli") -> KeyInfo:
        """Revoke a key by id (idempotent: revoking twice keeps the first time)."""
        try:
            with self.store.engine.begin() as conn:
                row = (
                    conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))
                    .mappings()
                    .first()
                )
                if row is None:
                    raise StoreError(f"no API key with id {key_id!r}")
                if row["revoked_at"] is None:
                    conn.execute(
                        api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=utcnow())
                    )
                    audit.record(
                        conn,
                        actor=actor,
                        action="key.revoke",
                        subject_user=row["user_id"],
                        detail={"key_id": key_id, "prefix": row["prefix"]},
                    )
                digest = row["key_hash"]
        except sa_exc.SQLAlchemyError as exc:
            raise describe(exc, self.store.url) from None
        with self._lock:
            self._cache.pop(digest, None)
        return self.get(key_id)


def _check_limits(rate_limit: float | None, rate_burst: int | None) -> None:
    if rate_limit is not None and not rate_limit >= 0:
        raise ValueError(f"rate limit must be >= 0 requests per second (0: none), "
                         f"got {rate_limit!r}")
    if rate_burst is not None and rate_burst < 1:
        raise ValueError(f"rate burst must be >= 1, got {rate_burst!r}")
