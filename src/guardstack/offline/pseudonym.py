"""Pseudonymous user ids for everything analysis exports.

A keyed hash (HMAC-SHA256), so nobody without the key can test a guessed id
against a pseudonym. The key is ``$GUARDSTACK_PSEUDONYM_KEY`` when set;
otherwise a random key created once and kept in the store (``offline_keys``):
whoever can read that table can read raw ids anyway, and the pseudonyms stay
stable from run to run. Reviewers resolve a pseudonym to a raw id only
inside the store (``cases.user_ids``) and read history through the audited
``guardstack.store.user_history``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

import sqlalchemy as sa

from guardstack.store.engine import Store
from guardstack.store.events import utcnow
from guardstack.store.schema import offline_keys

ENV_KEY = "GUARDSTACK_PSEUDONYM_KEY"
_KEY_NAME = "pseudonym"


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError(f"${ENV_KEY} must be at least 16 characters")
        self._key = key

    def __call__(self, user: str) -> str:
        digest = hmac.new(self._key, user.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"p-{digest[:16]}"

    @classmethod
    def for_store(cls, store: Store) -> Pseudonymizer:
        env = os.environ.get(ENV_KEY)
        if env:
            return cls(env.encode("utf-8"))
        with store.engine.begin() as conn:
            value = conn.execute(
                sa.select(offline_keys.c.value).where(offline_keys.c.name == _KEY_NAME)
            ).scalar()
            if value is None:
                value = secrets.token_hex(32)
                conn.execute(
                    offline_keys.insert().values(name=_KEY_NAME, value=value, created_at=utcnow())
                )
        return cls(value.encode("ascii"))


def resolve(store: Store, pseudonym: str, *, actor: str, reason: str) -> str | None:
    """The raw user id behind ``pseudonym`` (from the findings table), or None.

    Unmasking a user is a read worth accounting for: the lookup writes an
    ``audit_log`` entry (actor, reason) in the same transaction. Read the
    user's messages afterwards with ``guardstack.store.user_history``, which
    audits that read too.
    """
    from guardstack.store import audit
    from guardstack.store.schema import findings

    if not actor or not reason or not reason.strip():
        raise ValueError("resolving a pseudonym needs an actor and a reason")
    with store.engine.begin() as conn:
        user = conn.execute(
            sa.select(findings.c.user_id).where(findings.c.pseudonym == pseudonym).limit(1)
        ).scalar()
        audit.record(conn, actor=actor, action="pseudonym.resolve", subject_user=user,
                     detail={"pseudonym": pseudonym, "reason": reason, "found": user is not None})
    return user
