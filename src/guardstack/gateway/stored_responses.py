"""The conversations behind recent Responses API answers, kept so a request
can continue one with ``previous_response_id``: in this process's memory
(:class:`StoredResponses`), and with ``serve --shared-responses`` in the
event store too (:class:`SharedStoredResponses`), so any replica can.

Clients of the Responses API (the OpenAI Agents SDK, coding agents) send
only the new turn and name the response it follows; the server supplies the
rest. vLLM's own Responses API keeps them in memory the same way. Here each
entry is the chat conversation that produced a response plus the answer as
the client saw it (withheld text stays withheld), owned by the user who made
it: another user's id is "not found", so ids cannot be used to read someone
else's conversation. Bounded: the oldest entry goes first, an entry older
than its time to live is forgotten, and a restart forgets everything in
memory (the event store keeps the record; this is only a cache).
Each entry also names the conversation its chain belongs to (the first
response's id, unless the client named one), so the store files a chain of
responses as one conversation.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guardstack.gateway.outage import Outage, Pruning

if TYPE_CHECKING:
    from guardstack.store.stored_responses import SharedResponses


@dataclass(frozen=True, slots=True)
class Stored:
    owner: str | None
    messages: list[dict[str, Any]]   # the conversation, the response's answer last
    conversation_id: str


class StoredResponses:
    """This process's answers, in memory: at most ``capacity`` (0 keeps
    none), each for ``ttl`` seconds."""

    def __init__(self, capacity: int, ttl: float = float("inf")) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._entries: OrderedDict[str, tuple[float, Stored]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, response_id: str, entry: Stored, age: float = 0.0) -> None:
        """Keep ``entry`` (stored ``age`` seconds ago, as one read back from
        the event store was)."""
        if self.capacity <= 0:
            return
        with self._lock:
            self._entries[response_id] = (time.monotonic() - age, entry)
            self._entries.move_to_end(response_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def get(self, response_id: str, owner: str | None) -> Stored | None:
        """That response's entry, or None when it is unknown, forgotten,
        expired or someone else's."""
        with self._lock:
            found = self._entries.get(response_id)
            if found is None:
                return None
            at, entry = found
            if time.monotonic() - at > self.ttl:
                del self._entries[response_id]
                return None
            if entry.owner != owner:
                return None
            self._entries.move_to_end(response_id)
            return Stored(entry.owner, [dict(m) for m in entry.messages], entry.conversation_id)

    async def remember(self, response_id: str, entry: Stored) -> None:
        """:meth:`put`, as the gateway calls it (a shared store awaits its write)."""
        self.put(response_id, entry)

    async def recall(self, response_id: str, owner: str | None) -> Stored | None:
        """:meth:`get`, as the gateway calls it (a shared store may ask the database)."""
        return self.get(response_id, owner)

    def close(self) -> None:
        """Let go of what is held (a shared store: its connections)."""

    def __len__(self) -> int:
        return len(self._entries)


class SharedStoredResponses(StoredResponses):
    """The same, written through to the event store: an answer is written
    before the client receives its end (the last event of a stream), so the
    next turn finds it on any replica, and an id this process does not know
    is looked up there. While the store fails, this process's memory serves
    alone (an answer another replica made is then "not found"), the outage is
    logged once, and the store is asked again every
    :data:`~guardstack.gateway.outage.STORE_RETRY_S` seconds."""

    def __init__(self, capacity: int, shared: SharedResponses) -> None:
        super().__init__(capacity, shared.ttl)
        self.shared = shared
        self.outage = Outage("shared stored responses",
                             "continuing only this process's responses")
        self.pruning = Pruning("expired stored responses")

    async def remember(self, response_id: str, entry: Stored) -> None:
        if self.capacity <= 0:
            return
        self.put(response_id, entry)  # whatever the store does, this replica can continue it
        written, _ = await self.outage.ask(self.shared.put, response_id, entry.owner,
                                           entry.conversation_id, entry.messages)
        if written:
            await self.pruning.maybe(self.shared.prune)

    async def recall(self, response_id: str, owner: str | None) -> Stored | None:
        entry = self.get(response_id, owner)
        if entry is not None or self.capacity <= 0:
            return entry
        _, found = await self.outage.ask(self.shared.get, response_id, owner)
        if found is None:
            return None
        conversation_id, messages, created_at = found
        entry = Stored(owner, messages, conversation_id)
        # the next turn of this chain is likely here too; it expires as stored
        self.put(response_id, entry, age=max(0.0, time.time() - created_at))
        return Stored(owner, [dict(m) for m in messages], conversation_id)

    def close(self) -> None:
        self.shared.close()
