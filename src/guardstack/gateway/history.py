"""The earlier turns of a conversation, which the model reads again.

The input check judges a request's last user message. A client writes the
whole history it sends, though, so a request can carry a harmful request as
an *earlier* user turn, with a made-up assistant answer after it, and end
with "Continue.": the last message is harmless and the model reads the rest.
So the user messages before the last one are judged too, each with the
messages before it as context, and a block-level verdict on any of them
blocks the request.

In a real conversation through the gateway every earlier user message was
the last one of an earlier request and was judged then. :class:`JudgedTurns`
remembers those verdicts (per policy, by the text's hash, least recently used
dropped first), so only turns this gateway has not judged cost a classifier
call: a conversation that came in through another replica, or one written by
the client.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

from guardstack.classifiers.base import Message
from guardstack.policy import Policy
from guardstack.verdict import Action, Verdict

#: Texts remembered per policy.
CAPACITY = 65_536


def earlier_user_turns(messages: Sequence[Message], last_user: int) -> list[int]:
    """Indices of the user messages with text before ``last_user``."""
    return [j for j in range(last_user)
            if messages[j].role == "user" and messages[j].content.strip()]


class JudgedTurns:
    """Which user messages were judged already under a policy, and whether
    they blocked. Thread-safe."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        # id(policy) -> (the policy, kept so its id is not reused; texts seen)
        self._seen: dict[int, tuple[Policy, OrderedDict[bytes, Verdict | None]]] = {}

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, policy: Policy, text: str) -> Verdict | bool | None:
        """False: not judged under ``policy``; None: judged and not blocked;
        a verdict: judged and blocked."""
        with self._lock:
            entry = self._seen.get(id(policy))
            if entry is None:
                return False
            seen = entry[1]
            key = self._key(text)
            if key not in seen:
                return False
            seen.move_to_end(key)
            return seen[key]

    def put(self, policy: Policy, text: str, verdict: Verdict) -> None:
        with self._lock:
            entry = self._seen.get(id(policy))
            if entry is None:
                entry = self._seen[id(policy)] = (policy, OrderedDict())
            seen, key = entry[1], self._key(text)
            seen[key] = verdict if verdict.decision is Action.BLOCK else None
            seen.move_to_end(key)
            while len(seen) > self.capacity:
                seen.popitem(last=False)
