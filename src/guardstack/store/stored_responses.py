"""Responses API answers kept in the store, so gateway replicas share them.

A Responses API client (the OpenAI Agents SDK, coding agents) sends only the
new turn and names the answer it follows with ``previous_response_id``. Each
gateway process remembers its own answers in memory; behind a load balancer
the next turn often lands on another replica, which answers 404. With
``guardstack serve --shared-responses`` each answer is also written here, in
the event store the replicas share, and a replica that does not know an id
looks it up.

A row is the chat conversation that produced an answer with the answer last
(as the client saw it: withheld text stays withheld), as JSON; the
conversation its chain is filed under; the owner as the sha256 of the user
id, never the id (another user's id reads as "not found"); and when it was
stored. Rows older than the time to live are neither returned nor kept
(:meth:`SharedResponses.prune`), and ``guardstack purge`` deletes them with
the traffic of their age. The conversation is stored as it was sent, since
that is what continuing it needs, so ``--redact`` does not apply to it: keep
the time to live short.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import sqlalchemy as sa

from guardstack.store.engine import Store, fast_commit_engine
from guardstack.store.schema import stored_responses

_PUT = sa.text(
    "INSERT INTO stored_responses (id, owner, conversation_id, messages, created_at) "
    "VALUES (:id, :owner, :conversation_id, :messages, :created_at) "
    "ON CONFLICT (id) DO NOTHING")
_GET = sa.text(
    "SELECT owner, conversation_id, messages, created_at FROM stored_responses "
    "WHERE id = :id AND created_at >= :oldest")


def owner_key(owner: str | None) -> str | None:
    """The stored form of a response's owner (its sha256, hex; None stays None)."""
    if owner is None:
        return None
    return hashlib.sha256(owner.encode("utf-8", "surrogatepass")).hexdigest()


class SharedResponses:
    """Stored answers in ``store``'s database, over a small connection pool
    of their own whose commits do not wait for the disk: a crash may forget
    the last milliseconds of answers, whose clients then resend the whole
    conversation. Call :meth:`close` when done."""

    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        #: seconds an answer may be continued after it was stored
        self.ttl = ttl
        self.engine, self._own_engine = fast_commit_engine(store)

    def put(self, response_id: str, owner: str | None, conversation_id: str,
            messages: list[dict[str, Any]], now: float | None = None) -> None:
        """Store an answer (an id stored before keeps its first row). Raises
        what the database raises."""
        params = {"id": response_id, "owner": owner_key(owner),
                  "conversation_id": conversation_id,
                  # ASCII JSON: a lone surrogate a client sent as "\\ud800"
                  # stays an escape, which every database encoding takes.
                  "messages": json.dumps(messages, separators=(",", ":")),
                  "created_at": time.time() if now is None else now}
        with self.engine.connect() as conn:
            conn.execute(_PUT, params)

    def get(self, response_id: str, owner: str | None, now: float | None = None
            ) -> tuple[str, list[dict[str, Any]], float] | None:
        """``(conversation_id, messages, created_at)`` of that answer, or None
        when it is unknown, older than the time to live, or someone else's."""
        now = time.time() if now is None else now
        with self.engine.connect() as conn:
            row = conn.execute(_GET, {"id": response_id, "oldest": now - self.ttl}).first()
        if row is None or row.owner != owner_key(owner):
            return None
        return row.conversation_id, json.loads(row.messages), float(row.created_at)

    def prune(self, now: float | None = None) -> int:
        """Delete the answers older than the time to live; returns how many."""
        now = time.time() if now is None else now
        with self.engine.connect() as conn:
            return int(conn.execute(stored_responses.delete().where(
                stored_responses.c.created_at < now - self.ttl)).rowcount or 0)

    def close(self) -> None:
        """Close this object's own connections (never the store's)."""
        if self._own_engine:
            self.engine.dispose()
