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
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class StoredResponses:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[str | None, list[dict[str, Any]]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, response_id: str, owner: str | None,
            conversation: list[dict[str, Any]]) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._entries[response_id] = (owner, conversation)
            self._entries.move_to_end(response_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def get(self, response_id: str, owner: str | None) -> list[dict[str, Any]] | None:
        """The conversation up to and including that response, or None when
        it is unknown, forgotten or someone else's."""
        with self._lock:
            entry = self._entries.get(response_id)
            if entry is None or entry[0] != owner:
                return None
            self._entries.move_to_end(response_id)
            return [dict(m) for m in entry[1]]

    def __len__(self) -> int:
        return len(self._entries)
