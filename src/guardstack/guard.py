"""``Guard``: the one entry point for judging text, used by every layer.

A detector scores, the policy decides. Any exception a detector raises
becomes a ``status=error`` verdict that the policy's fail-open/fail-closed
setting resolves, so callers never see a crash from a bad input or a broken
model.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from guardstack import detectors, topics
from guardstack.classifiers.base import (
    Detection,
    Detector,
    Message,
    Role,
    Subject,
    error_detection,
)
from guardstack.content_parts import part_text
from guardstack.policy import Policy
from guardstack.topics import TopicVectors
from guardstack.verdict import Status, Verdict

MessageLike = Message | Mapping[str, Any]
log = logging.getLogger("guardstack")


class Guard:
    def __init__(self, policy: Policy | str | Path | None = None,
                 detector: Detector | None = None) -> None:
        if policy is None:
            policy = Policy.default()
        elif not isinstance(policy, Policy):
            policy = Policy.load(policy)
        self.policy: Policy = policy
        self._detector = detector
        self._lock = threading.Lock()
        # policy -> its topics' examples embedded by this guard's detector, or
        # why they could not be (kept: a detector without embeddings stays so)
        self._topic_vectors: dict[int, tuple[Policy, TopicVectors | topics.TopicError]] = {}
        self._embedding = threading.Lock()

    @property
    def detector(self) -> Detector:
        """The detector, loaded once on first use (thread-safe)."""
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    self._detector = detectors.load(self.policy.detector)
        return self._detector

    # -- raw scores --------------------------------------------------------

    def detect_batch(self, subjects: Sequence[Subject]) -> list[Detection]:
        start = time.perf_counter()
        try:
            out = self.detector.detect_sync(subjects)
        except Exception as exc:  # a broken detector must not take the caller down
            ms = (time.perf_counter() - start) * 1000
            return [error_detection(f"{type(exc).__name__}: {exc}", ms) for _ in subjects]
        return _checked(out, subjects)

    async def adetect_batch(self, subjects: Sequence[Subject],
                            timeout_s: float | None = None) -> list[Detection]:
        start = time.perf_counter()
        try:
            out = await asyncio.wait_for(self.detector.detect(subjects), timeout_s)
        except TimeoutError:
            ms = (time.perf_counter() - start) * 1000
            return [error_detection(f"detector timed out after {ms:.0f} ms", ms)
                    for _ in subjects]
        except Exception as exc:
            ms = (time.perf_counter() - start) * 1000
            return [error_detection(f"{type(exc).__name__}: {exc}", ms) for _ in subjects]
        return _checked(out, subjects)

    # -- topics ------------------------------------------------------------

    def topic_vectors(self, policy: Policy | None = None) -> TopicVectors | None:
        """The examples of ``policy``'s topics (default: the guard's) embedded
        by this guard's detector, once per policy; None without topics.
        Each example is embedded on its own, so the vectors do not depend on
        what else was scored with them. Raises :class:`guardstack.topics.
        TopicError` when the detector gives no embeddings or fails (logged
        the first time; not tried again for this policy)."""
        policy = policy or self.policy
        if not policy.topics:
            return None
        found = self._settled(policy)
        if found is None:
            with self._embedding:  # threads asking at once embed once
                found = self._settled(policy)
                if found is None:
                    name = str(getattr(self.detector, "name", "") or policy.detector)
                    try:
                        found = topics.embed(policy.topics, self._embed, name)
                    except topics.TopicError as exc:
                        log.error("%s: topics not judged: %s", policy.source, exc)
                        found = exc
                    self._topic_vectors[id(policy)] = (policy, found)
        if isinstance(found, topics.TopicError):
            raise found
        return found

    def checked_topic_vectors(self, policy: Policy | None = None) -> TopicVectors | None:
        """:meth:`topic_vectors` for checks: None when the detector cannot
        embed them, so checks go on without the topics and each verdict's
        reason says so."""
        try:
            return self.topic_vectors(policy)
        except topics.TopicError:
            return None

    def cached_topic_vectors(self, policy: Policy) -> TopicVectors | None:
        """:meth:`topic_vectors` if already embedded, without embedding."""
        found = self._settled(policy)
        return None if isinstance(found, topics.TopicError) else found

    def topics_settled(self, policy: Policy) -> bool:
        """Whether ``policy``'s topics were embedded, or found not to embed."""
        return self._settled(policy) is not None

    def _settled(self, policy: Policy) -> TopicVectors | topics.TopicError | None:
        hit = self._topic_vectors.get(id(policy))
        return hit[1] if hit is not None and hit[0] is policy else None

    def _embed(self, texts: Sequence[str], role: str, alone: bool
               ) -> list[Sequence[float] | None]:
        out: list[Sequence[float] | None] = []
        step = 1 if alone else 32
        for i in range(0, len(texts), step):
            batch = texts[i:i + step]
            for text, d in zip(batch, self.detect_batch([_subject(t, role, ()) for t in batch]),
                               strict=True):
                if d.status is not Status.OK:
                    raise topics.TopicError(f"could not embed the topic text {text[:60]!r}: "
                                            f"{d.error or d.status.value}")
                out.append(d.embedding)
        return out

    # -- verdicts ----------------------------------------------------------

    def _decide(self, subjects: Sequence[Subject], detections: Iterable[Detection],
                prompt_clean: bool = False) -> list[Verdict]:
        name = getattr(self._detector, "name", self.policy.detector)
        vectors = self.checked_topic_vectors()
        return [self.policy.decide(s.role, d, name, text=s.text, prompt_clean=prompt_clean,
                                   topic_vectors=vectors)
                for s, d in zip(subjects, detections, strict=True)]

    def check_batch(self, subjects: Sequence[Subject], *, prompt_clean: bool = False
                    ) -> list[Verdict]:
        """Verdicts on ``subjects``. ``prompt_clean``: the responses among them
        answer a prompt your own prompt check passed, so the policy's
        ``response.clean_prompt_threshold`` applies (as in the gateway)."""
        return self._decide(subjects, self.detect_batch(subjects), prompt_clean)

    def timeout_s(self, subjects: Sequence[Subject]) -> float | None:
        """The policy's detector timeout for these subjects (the longest of their roles)."""
        return self.policy.timeout_s(s.role for s in subjects)

    async def acheck_batch(self, subjects: Sequence[Subject], *, prompt_clean: bool = False
                           ) -> list[Verdict]:
        detections = await self.adetect_batch(subjects, self.timeout_s(subjects))
        if self.policy.topics and not self.topics_settled(self.policy):
            # the first check embeds the topic examples: not on the event loop
            await asyncio.to_thread(self.checked_topic_vectors)
        return self._decide(subjects, detections, prompt_clean)

    def check(self, text: str, role: str = "prompt",
              context: Sequence[MessageLike] = (), *, prompt_clean: bool = False) -> Verdict:
        return self.check_batch([_subject(text, role, context)], prompt_clean=prompt_clean)[0]

    async def acheck(self, text: str, role: str = "prompt",
                     context: Sequence[MessageLike] = (), *, prompt_clean: bool = False
                     ) -> Verdict:
        return (await self.acheck_batch([_subject(text, role, context)],
                                        prompt_clean=prompt_clean))[0]

    def check_messages(self, messages: Sequence[MessageLike], *, prompt_clean: bool = False
                       ) -> Verdict:
        """Judge the last message with the ones before it as context: an
        assistant message as a response, anything else as a prompt.
        ``prompt_clean``: see :meth:`check_batch`."""
        return self.check_batch([subject_from_messages(messages)], prompt_clean=prompt_clean)[0]

    async def acheck_messages(self, messages: Sequence[MessageLike], *,
                              prompt_clean: bool = False) -> Verdict:
        return (await self.acheck_batch([subject_from_messages(messages)],
                                        prompt_clean=prompt_clean))[0]


    def mask(self, text: str, role: str = "prompt") -> str:
        """``text`` with what the policy's ``action: mask`` blocklists for
        ``role`` find replaced by placeholders (``[EMAIL]``, ``[CREDENTIAL]``,
        a list's replacement), as the gateway sends it on; unchanged without
        such lists. No model runs."""
        if role not in ("prompt", "response"):
            raise ValueError(f"role must be 'prompt' or 'response', got {role!r}")
        return self.policy.mask(role, text).text


def as_message(m: MessageLike) -> Message:
    if isinstance(m, Message):
        return m
    content = m.get("content")
    if isinstance(content, list):  # OpenAI content parts: every text they carry
        content = "\n".join(t for t in map(part_text, content) if t is not None)
    return Message(role=str(m.get("role", "user")), content="" if content is None else str(content))


def _subject(text: str, role: str, context: Sequence[MessageLike]) -> Subject:
    if role not in ("prompt", "response"):
        raise ValueError(f"role must be 'prompt' or 'response', got {role!r}")
    return Subject(text=text, role=cast(Role, role),
                   context=tuple(as_message(m) for m in context))


def subject_from_messages(messages: Sequence[MessageLike]) -> Subject:
    if not messages:
        raise ValueError("messages must not be empty")
    msgs = [as_message(m) for m in messages]
    last = msgs[-1]
    role: Role = "response" if last.role == "assistant" else "prompt"
    return Subject(text=last.content, role=role, context=tuple(msgs[:-1]))


def _checked(out: Sequence[Detection], subjects: Sequence[Subject]) -> list[Detection]:
    if len(out) != len(subjects):
        return [error_detection(f"detector returned {len(out)} results for {len(subjects)} inputs")
                for _ in subjects]
    return list(out)
