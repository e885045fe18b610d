"""The conversations behind recent Responses API answers, kept in memory so
a request can continue one with ``previous_response_id``.

Clients of the Responses API (the OpenAI Agents SDK, coding agents) send
only the new turn and name the response it follows; the server supplies the
rest. vLLM's own Responses API keeps them in memory the same way. Here each
entry is the chat conversation that produced a response plus the answer as
the client saw it (withheld text stays withheld), owned by the user who made
it: another user's id is "not found", so ids cannot be used to read someone
else's conversation. Bounded: the oldest entry goes first, and a restart
forgets everything (the event store keeps the record; this is only a cache).
Each entry also names the conversation its chain belongs to (the first
response's id, unless the client named one), so the store files a chain of
responses as one conversation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Stored:
    owner: str | None
    messages: list[dict[str, Any]]   # the conversation, the response's answer last
    conversation_id: str


class StoredResponses:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, Stored] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, response_id: str, entry: Stored) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._entries[response_id] = entry
            self._entries.move_to_end(response_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def get(self, response_id: str, owner: str | None) -> Stored | None:
        """That response's entry, or None when it is unknown, forgotten or
        someone else's."""
        with self._lock:
            entry = self._entries.get(response_id)
            if entry is None or entry.owner != owner:
                return None
            self._entries.move_to_end(response_id)
            return Stored(entry.owner, [dict(m) for m in entry.messages], entry.conversation_id)

    def __len__(self) -> int:
        return len(self._entries)
