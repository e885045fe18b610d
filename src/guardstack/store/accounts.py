"""Account states (none, warn, rate_limited, suspended) and the actions that set them.

Every change is an ``account_actions`` row saying who, when, why and what
the state was before, so any enforcement can be explained and undone:
:meth:`Accounts.reverse` restores the previous state as a new action that
points back at the one it reverses. Only a user's latest action can be
reversed, so an undo never silently discards later decisions.

``get_state`` is on the gateway's request path: it is cached for
``cache_ttl`` seconds per user (changes made through this object apply at
once), and :meth:`Accounts.restricted` loads every non-``none`` user in one
query for a gateway that prefers to poll.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from guardstack.store.engine import Store
from guardstack.store.errors import StoreError, describe
from guardstack.store.events import utcnow
from guardstack.store.schema import account_actions, account_states


class AccountState(StrEnum):
    NONE = "none"
    WARN = "warn"
    RATE_LIMITED = "rate_limited"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class AccountAction:
    id: int
    user: str
    state: AccountState
    previous_state: AccountState
    actor: str
    reason: str
    ts: datetime
    reverses: int | None
    reversed_by: int | None


def _action(row: sa.RowMapping) -> AccountAction:
    return AccountAction(
        id=row["id"],
        user=row["user_id"],
        state=AccountState(row["state"]),
        previous_state=AccountState(row["previous_state"]),
        actor=row["actor"],
        reason=row["reason"],
        ts=row["ts"],
        reverses=row["reverses"],
        reversed_by=row["reversed_by"],
    )


def parse_state(state: str | AccountState) -> AccountState:
    try:
        return AccountState(state)
    except ValueError:
        choices = ", ".join(s.value for s in AccountState)
        raise ValueError(f"unknown account state {state!r} (choose from {choices})") from None


class Accounts:
    def __init__(self, store: Store | str | None = None, *, cache_ttl: float = 2.0) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, AccountState]] = {}
        self._lock = threading.Lock()
        # Serialises read-modify-write in this process; PostgreSQL also
        # locks the row (FOR UPDATE) against other processes.
        self._write_lock = threading.RLock()

    def get_state(self, user: str) -> AccountState:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(user)
            if hit is not None and hit[0] > now:
                return hit[1]
        with self.store.engine.connect() as conn:
            value = conn.execute(
                sa.select(account_states.c.state).where(account_states.c.user_id == user)
            ).scalar()
        state = AccountState(value) if value is not None else AccountState.NONE
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[user] = (now + self.cache_ttl, state)
        return state

    async def aget_state(self, user: str) -> AccountState:
        """:meth:`get_state` without blocking the event loop on a cache miss."""
        with self._lock:
            hit = self._cache.get(user)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        return await asyncio.to_thread(self.get_state, user)

    def restricted(self) -> dict[str, AccountState]:
        """Every user whose state is not ``none``."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(account_states.c.user_id, account_states.c.state).where(
                    account_states.c.state != AccountState.NONE.value
                )
            ).all()
        return {user: AccountState(state) for user, state in rows}

    def set_state(
        self,
        user: str,
        state: str | AccountState,
        actor: str,
        reason: str,
        *,
        _reverses: int | None = None,
    ) -> AccountAction:
        """Put ``user`` in ``state``; ``actor`` (who) and ``reason`` (why) are required."""
        new = parse_state(state)
        if not user:
            raise ValueError("user is required")
        if not actor or not actor.strip():
            raise ValueError("actor is required: say who takes this action")
        if not reason or not reason.strip():
            raise ValueError("reason is required: say why")
        try:
            with self._write_lock, self.store.engine.begin() as conn:
                action = self._apply(conn, user, new, actor, reason, _reverses)
        except sa_exc.SQLAlchemyError as exc:
            raise describe(exc, self.store.url) from None
        with self._lock:
            self._cache.pop(user, None)
        return action

    def _apply(
        self,
        conn: sa.Connection,
        user: str,
        new: AccountState,
        actor: str,
        reason: str,
        reverses: int | None,
    ) -> AccountAction:
        query = sa.select(account_states.c.state).where(account_states.c.user_id == user)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        current = conn.execute(query).scalar()
        previous = AccountState(current) if current is not None else AccountState.NONE
        now = utcnow()
        action_id = conn.execute(
            account_actions.insert()
            .values(
                user_id=user,
                state=new.value,
                previous_state=previous.value,
                actor=actor,
                reason=reason,
                ts=now,
                reverses=reverses,
            )
            .returning(account_actions.c.id)
        ).scalar_one()
        values = {"state": new.value, "updated_at": now, "last_action_id": action_id}
        if current is None:
            conn.execute(account_states.insert().values(user_id=user, **values))
        else:
            conn.execute(
                account_states.update().where(account_states.c.user_id == user).values(**values)
            )
        if reverses is not None:
            conn.execute(
                account_actions.update()
                .where(account_actions.c.id == reverses)
                .values(reversed_by=action_id)
            )
        return AccountAction(
            id=action_id,
            user=user,
            state=new,
            previous_state=previous,
            actor=actor,
            reason=reason,
            ts=now,
            reverses=reverses,
            reversed_by=None,
        )

    def reverse(self, action_id: int, actor: str, reason: str) -> AccountAction:
        """Undo action ``action_id``: restore the state it replaced, as a new action."""
        with self._write_lock:
            return self._reverse(action_id, actor, reason)

    def _reverse(self, action_id: int, actor: str, reason: str) -> AccountAction:
        with self.store.engine.connect() as conn:
            row = (
                conn.execute(sa.select(account_actions).where(account_actions.c.id == action_id))
                .mappings()
                .first()
            )
            if row is None:
                raise StoreError(f"no account action with id {action_id}")
            target = _action(row)
            latest = conn.execute(
                sa.select(sa.func.max(account_actions.c.id)).where(
                    account_actions.c.user_id == target.user
                )
            ).scalar()
        if target.reversed_by is not None:
            raise StoreError(
                f"action {action_id} was already reversed by action {target.reversed_by}"
            )
        if latest != target.id:
            raise StoreError(
                f"action {action_id} is not the latest for user {target.user!r} "
                f"(latest is {latest}); reverse that first or set the state directly"
            )
        return self.set_state(
            target.user, target.previous_state, actor, reason, _reverses=target.id
        )

    def history(self, user: str) -> list[AccountAction]:
        """Every action on ``user``, oldest first."""
        with self.store.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(account_actions)
                    .where(account_actions.c.user_id == user)
                    .order_by(account_actions.c.id)
                )
                .mappings()
                .all()
            )
        return [_action(r) for r in rows]
