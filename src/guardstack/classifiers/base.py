"""The detector seam: what the fast classifier, guard-model backends and any
third-party detector implement.

A detector turns :class:`Subject` objects into :class:`Detection` objects
(raw per-category probabilities). It never decides: the policy turns a
detection into a :class:`~guardstack.verdict.Verdict`. Detectors are
registered under the ``guardstack.detectors`` entry-point group; the
built-in ones register there too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from guardstack.verdict import Status

Role = Literal["prompt", "response"]

#: The overall harm score every detector reports beside category scores.
HARM = "harm"


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str


@dataclass(frozen=True, slots=True)
class Subject:
    """One piece of text to judge, as what it is.

    ``role="prompt"``: ``text`` is the user's message, ``context`` the
    messages before it. ``role="response"``: ``text`` is the model's answer,
    ``context`` the conversation it answers (its last user message is the
    prompt).
    """

    text: str
    role: Role = "prompt"
    context: tuple[Message, ...] = ()


@dataclass(frozen=True, slots=True)
class Detection:
    """Raw output of a detector for one subject.

    ``scores`` maps ``"harm"`` and taxonomy category ids to probabilities in
    [0, 1]. ``embedding`` is an optional unit-length vector of the judged
    text, kept by the event store so offline analysis need not recompute it.
    """

    scores: Mapping[str, float]
    status: Status = Status.OK
    error: str | None = None
    latency_ms: float = 0.0
    embedding: Sequence[float] | None = field(default=None, repr=False)


@runtime_checkable
class Detector(Protocol):
    """Anything that scores subjects. Implement ``detect``; it must not raise
    for bad input (return a detection with ``status=error`` instead)."""

    name: str

    async def detect(self, subjects: Sequence[Subject]) -> list[Detection]: ...

    def detect_sync(self, subjects: Sequence[Subject]) -> list[Detection]: ...


def error_detection(message: str, latency_ms: float = 0.0) -> Detection:
    return Detection(scores={}, status=Status.ERROR, error=message, latency_ms=latency_ms)


