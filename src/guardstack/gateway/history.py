"""The earlier turns of a conversation, which the model reads again.

The input check judges a request's last user message. A client writes the
whole history it sends, though, so a request can carry a harmful request as
an *earlier* user turn, with a made-up assistant answer after it, and end
with "Continue.": the last message is harmless and the model reads the rest.
With the policy's ``prompt.judge_history`` on, the user messages before the
last one are judged too, each with the messages before it as context: a
block-level verdict on any of them blocks the request (``block``) or takes
that message out of what the model reads (``withhold``, :func:`withheld`);
a flag makes the answer judged as an answer to a flagged prompt.

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
from dataclasses import dataclass, field
from typing import Any

from guardstack.classifiers.base import Message, Subject
from guardstack.policy import Policy
from guardstack.verdict import Action, Status, Verdict

#: Texts remembered per policy.
CAPACITY = 65_536


def earlier_user_turns(messages: Sequence[Message], last_user: int) -> list[int]:
    """Indices of the user messages with text before ``last_user``."""
    return [j for j in range(last_user)
            if messages[j].role == "user" and messages[j].content.strip()]


class JudgedTurns:
    """Which user messages were judged already under a policy, and what was
    decided. Thread-safe."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        # id(policy) -> (the policy, kept so its id is not reused; texts seen)
        self._seen: dict[int, tuple[Policy, OrderedDict[bytes, Verdict | None]]] = {}

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, policy: Policy, text: str) -> Verdict | bool | None:
        """False: not judged under ``policy``; None: judged and allowed; a
        verdict: judged and flagged or blocked."""
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
            seen[key] = None if verdict.decision is Action.ALLOW else verdict
            seen.move_to_end(key)
            while len(seen) > self.capacity:
                seen.popitem(last=False)


@dataclass(slots=True)
class Earlier:
    """The earlier user messages of one request: those to judge now (their
    indices and subjects) and those judged before that flagged or blocked.
    Without ``turns`` the check is off and there is nothing to judge."""
    turns: JudgedTurns | None = None
    policy: Policy | None = None
    indices: list[int] = field(default_factory=list)
    subjects: list[Subject] = field(default_factory=list)
    found: list[tuple[int, Verdict]] = field(default_factory=list)

    def settle(self, subjects: Sequence[Subject], verdicts: Sequence[Verdict]) -> None:
        """After one classifier call over ``[*subjects, *self.subjects]``
        (``verdicts`` in that order): remember every text judged without
        error, and add the earlier messages that flag or block to :attr:`found`."""
        if self.turns is None or self.policy is None:
            return
        for subject, verdict in zip([*subjects, *self.subjects], verdicts, strict=True):
            if verdict.status is Status.OK:
                self.turns.put(self.policy, subject.text, verdict)
        self.found += [(j, v) for j, v in zip(self.indices, verdicts[len(subjects):],
                                              strict=True)
                       if v.decision is not Action.ALLOW]

    @property
    def blocked(self) -> list[int]:
        """The indices of the earlier messages that block, in order (what
        ``withhold`` takes out)."""
        return sorted(j for j, v in self.found if v.decision is Action.BLOCK)

    @property
    def blocking(self) -> tuple[int, Verdict] | None:
        """The first earlier message that blocks, with its verdict."""
        return min(((j, v) for j, v in self.found if v.decision is Action.BLOCK),
                   key=lambda b: b[0], default=None)


def earlier(turns: JudgedTurns, policy: Policy, messages: Sequence[Message],
            last_user: int | None = None) -> Earlier:
    """What the history check needs of a conversation whose last user
    message is ``messages[last_user]`` (by default the last user message
    there is); nothing when the policy's ``prompt.judge_history`` is off."""
    if policy.role("prompt").judge_history == "off":
        return Earlier()
    if last_user is None:
        last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
        if last_user is None:
            return Earlier()
    out = Earlier(turns, policy)
    for j in earlier_user_turns(messages, last_user):
        known = turns.get(policy, messages[j].content)
        if known is False:
            out.indices.append(j)
            out.subjects.append(Subject(messages[j].content, "prompt", tuple(messages[:j])))
        elif isinstance(known, Verdict):
            out.found.append((j, known))
    return out


def withheld(messages: Sequence[Any], indices: Sequence[int]) -> list[Any]:
    """``messages`` without the user messages at ``indices`` and the turns
    that answered each (assistant and tool messages up to the next user
    message; system messages stay)."""
    drop: set[int] = set()
    for j in indices:
        drop.add(j)
        k = j + 1
        while k < len(messages) and _role(messages[k]) not in ("user", "system", "developer"):
            drop.add(k)
            k += 1
    return [m for i, m in enumerate(messages) if i not in drop]


def _role(message: Any) -> str | None:
    role = message.get("role") if isinstance(message, dict) else getattr(message, "role", None)
    return role if isinstance(role, str) else None
