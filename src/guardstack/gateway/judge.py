"""The gateway's view of the Guard: judge subjects within the policy's
timeout, turning a timeout or an exception into the policy's fail-open or
fail-closed verdict, and keep each subject's embedding for the event store.

Concurrent requests share classifier calls: while ``max_calls`` calls run,
the subjects of other requests queue, and the next call takes all of them
(up to ``max_batch``). An idle gateway adds no wait; a busy one scores many
subjects per model call instead of one each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from guardstack.classifiers.base import Detection, Subject, error_detection
from guardstack.gateway import tracing
from guardstack.gateway.metrics import Metrics
from guardstack.guard import Guard
from guardstack.policy import Policy
from guardstack.topics import TopicVectors
from guardstack.verdict import Verdict


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    embedding: Sequence[float] | None = None


@dataclass(slots=True)
class _Waiting:
    subjects: list[Subject]
    future: asyncio.Future[list[Detection]]
    timeout: float | None


class Judge:
    def __init__(self, guard: Guard, metrics: Metrics | None = None, *,
                 max_batch: int = 64, max_calls: int = 2) -> None:
        self.guard = guard
        self.policy: Policy = guard.policy
        self.metrics = metrics
        self.max_batch = max_batch
        self.loaded = False
        self.max_calls = max_calls
        self._queue: list[_Waiting] = []
        self._workers: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        """Load the detector off the event loop (it reads model weights) and
        embed the policy's topic examples with it."""
        await asyncio.to_thread(lambda: self.guard.detector)
        self.loaded = True
        await self.topic_vectors(self.policy)

    async def warm(self, policies: Iterable[Policy]) -> None:
        """Embed these policies' topic examples now (tenants' at start, a
        reload's), so no request waits for it."""
        if self.loaded:
            for policy in policies:
                await self.topic_vectors(policy)

    async def topic_vectors(self, policy: Policy) -> TopicVectors | None:
        """``policy``'s topic examples embedded (off the event loop the first
        time: a tenant's policy, a reloaded one)."""
        if not policy.topics:
            return None
        if self.guard.topics_settled(policy):
            return self.guard.cached_topic_vectors(policy)
        # the guard embeds once however many ask, and logs a detector that cannot
        return await asyncio.to_thread(self.guard.checked_topic_vectors, policy)

    @property
    def detector_name(self) -> str:
        if self.loaded:  # before that, reading guard.detector would load it on the loop
            return str(getattr(self.guard.detector, "name", "") or self.policy.detector)
        return self.policy.detector

    async def judge(self, subjects: Sequence[Subject], policy: Policy | None = None, *,
                    prompt_clean: bool = False) -> list[Judgement]:
        """Verdicts on ``subjects`` under ``policy`` (default: the guard's;
        a tenant's own policy reads the same detector's scores).
        ``prompt_clean``: responses answer a prompt the prompt check passed
        (:meth:`Policy.decide`)."""
        if not subjects:
            return []
        policy = policy or self.policy
        role = subjects[0].role
        with tracing.check(role, len(subjects), self.detector_name) as span:
            out, elapsed = await self._judged(subjects, policy, prompt_clean)
            tracing.verdicts(span, [j.verdict for j in out])
        if self.metrics is not None:
            self.metrics.classifier_seconds.labels(role=role).observe(elapsed)
        return out

    async def _judged(self, subjects: Sequence[Subject], policy: Policy, prompt_clean: bool
                      ) -> tuple[list[Judgement], float]:
        timeout = policy.timeout_s(s.role for s in subjects)
        start = time.perf_counter()
        waiting = _Waiting(list(subjects), asyncio.get_running_loop().create_future(), timeout)
        self._queue.append(waiting)
        if len(self._workers) < self.max_calls:
            task = asyncio.create_task(self._drain())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        try:
            # Shielded: a request that gives up must not cancel a batch others share.
            detections = await asyncio.wait_for(asyncio.shield(waiting.future), timeout)
        except TimeoutError:
            ms = (time.perf_counter() - start) * 1000
            detections = [error_detection(f"timed out after {ms:.0f} ms", ms)
                          for _ in subjects]
        elapsed = time.perf_counter() - start
        vectors = await self.topic_vectors(policy)
        out = []
        for subject, det in zip(subjects, detections, strict=True):
            verdict = policy.decide(subject.role, det, self.detector_name, text=subject.text,
                                    prompt_clean=prompt_clean, topic_vectors=vectors)
            out.append(Judgement(verdict, det.embedding))
            if self.metrics is not None:
                self.metrics.observe_verdict(verdict)
        return out, elapsed

    async def _drain(self) -> None:
        while self._queue:
            batch: list[_Waiting] = []
            size = 0
            while self._queue and (not batch or
                                   size + len(self._queue[0].subjects) <= self.max_batch):
                item = self._queue.pop(0)
                batch.append(item)
                size += len(item.subjects)
            await self._run(batch)

    async def _run(self, batch: list[_Waiting]) -> None:
        subjects = [s for w in batch for s in w.subjects]
        if self.metrics is not None:
            self.metrics.classifier_batch.observe(len(subjects))
        # Guard turns a failing, slow or miscounting detector into error detections;
        # the batch may wait as long as its most patient request.
        timeouts = [w.timeout for w in batch if w.timeout is not None]
        detections = await self.guard.adetect_batch(subjects, max(timeouts, default=None))
        i = 0
        for w in batch:
            n = len(w.subjects)
            if not w.future.done():
                w.future.set_result(detections[i:i + n])
            i += n
