"""The cascade: the fast classifier decides the confident cases, a guard
model judges the uncertain ones.

A subject is *uncertain* when any watched label's fast score lies in its band
``[low, high)``: below ``low`` the fast classifier is trusted to allow, at or
above ``high`` to flag. Bands are per label (``harm`` and taxonomy ids);
labels without their own band use the default one on ``harm`` only. Uncertain
subjects go to the guard model in one batch, whose scores then replace the
fast ones (the fast embedding is kept for the event store).

Counters live on the cascade (``cascade.stats``: how many were judged,
escalated, failed at the guard, and the time the guard calls took), because
:class:`~guardstack.classifiers.base.Detection` has no field for them.

Latency: :meth:`Cascade.start` returns a :class:`CascadeRun` at once, with
the fast check and any escalation already running as a task, so the gateway
can send the upstream request meanwhile and ``await run.result()`` before it
releases the answer. ``speculative=True`` goes further: it sends the guard
request together with the fast check and drops it when the fast score turns
out confident, trading guard load for latency.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from guardstack.classifiers.base import HARM, Detection, Detector, Subject, error_detection
from guardstack.classifiers.guard_model import run_sync
from guardstack.verdict import Status

log = logging.getLogger("guardstack.cascade")

Band = tuple[float, float]
OnGuardError = Literal["error", "fast"]


@dataclass
class CascadeStats:
    judged: int = 0
    escalated: int = 0
    guard_errors: int = 0
    fast_ms: float = 0.0
    guard_ms: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def escalation_rate(self) -> float:
        return self.escalated / self.judged if self.judged else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"judged": self.judged, "escalated": self.escalated,
                "escalation_rate": round(self.escalation_rate, 6),
                "guard_errors": self.guard_errors, "fast_ms": round(self.fast_ms, 3),
                "guard_ms": round(self.guard_ms, 3)}


def _band(value: Any, label: str) -> Band:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"band for {label!r} must be two numbers (low, high), got {value!r}"
                         ) from None
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"band for {label!r} must satisfy 0 <= low <= high <= 1, "
                         f"got ({low}, {high})")
    return low, high


class Cascade:
    """Detector that escalates uncertain fast-classifier scores to a guard model.

    ``fast``/``guard``: detectors, or names for :func:`guardstack.detectors.load`
    (``guard_options`` are passed to the guard's constructor, e.g. ``base_url``,
    ``model``). ``low``/``high``: the default band on ``harm``; ``bands``:
    ``{label: (low, high)}`` for more labels. ``on_guard_error="error"`` returns
    the guard's error detection (the policy's fail mode decides);
    ``"fast"`` falls back to the fast scores.
    """

    name = "cascade"

    def __init__(self, fast: Detector | str = "fast", guard: Detector | str = "llama-guard-3",
                 *, low: float = 0.2, high: float = 0.8,
                 bands: Mapping[str, Sequence[float]] | None = None,
                 guard_options: Mapping[str, Any] | None = None,
                 fast_options: Mapping[str, Any] | None = None,
                 on_guard_error: OnGuardError = "error", speculative: bool = False,
                 **guard_kwargs: Any) -> None:
        self.bands: dict[str, Band] = {HARM: _band((low, high), HARM)}
        for label, b in (bands or {}).items():
            self.bands[label] = _band(b, label)
        if on_guard_error not in ("error", "fast"):
            raise ValueError(f"on_guard_error must be 'error' or 'fast', got {on_guard_error!r}")
        self.on_guard_error: OnGuardError = on_guard_error
        self.speculative = speculative
        self._fast_spec, self._fast_options = fast, dict(fast_options or {})
        # Remaining keyword options (base_url, model, api_key, ...) are the
        # guard's, so the CLI can build a cascade with the backend options.
        self._guard_spec, self._guard_options = guard, {**guard_kwargs, **(guard_options or {})}
        self._fast: Detector | None = fast if not isinstance(fast, str) else None
        self._guard: Detector | None = guard if not isinstance(guard, str) else None
        self._lock = threading.Lock()
        self.stats = CascadeStats()

    # -- parts, loaded on first use ---------------------------------------------

    @property
    def fast(self) -> Detector:
        if self._fast is None:
            with self._lock:
                if self._fast is None:
                    from guardstack import detectors

                    self._fast = detectors.load(str(self._fast_spec), **self._fast_options)
        return self._fast

    @property
    def guard(self) -> Detector:
        if self._guard is None:
            with self._lock:
                if self._guard is None:
                    from guardstack import detectors

                    self._guard = detectors.load(str(self._guard_spec), **self._guard_options)
        return self._guard

    def reset_stats(self) -> None:
        self.stats = CascadeStats()

    def uncertain(self, detection: Detection) -> bool:
        """True when the fast detection should go to the guard model."""
        if detection.status is not Status.OK:
            return True  # the fast classifier could not judge: ask the guard
        return any(low <= float(detection.scores.get(label, 0.0)) < high
                   for label, (low, high) in self.bands.items())

    # -- Detector protocol --------------------------------------------------------

    async def detect(self, subjects: Sequence[Subject]) -> list[Detection]:
        if not subjects:
            return []
        if self.speculative:
            return await self._detect_speculative(subjects)
        fast = await self._fast_detect(subjects)
        todo = [i for i, d in enumerate(fast) if self.uncertain(d)]
        guarded = await self._guard_detect([subjects[i] for i in todo])
        return self._merge(fast, dict(zip(todo, guarded, strict=True)))

    def detect_sync(self, subjects: Sequence[Subject]) -> list[Detection]:
        return run_sync(lambda: self._detect_and_close(subjects))

    def start(self, subjects: Sequence[Subject]) -> CascadeRun:
        """Begin judging now (must be called inside a running event loop);
        await ``run.result()`` later, e.g. after starting the upstream call."""
        return CascadeRun(asyncio.ensure_future(self.detect(subjects)))

    async def aclose(self) -> None:
        for part in (self._fast, self._guard):
            closer = getattr(part, "aclose", None)
            if closer is not None:
                await closer()

    # -- internals ---------------------------------------------------------------

    async def _detect_and_close(self, subjects: Sequence[Subject]) -> list[Detection]:
        try:
            return await self.detect(subjects)
        finally:
            await self.aclose()

    async def _fast_detect(self, subjects: Sequence[Subject]) -> list[Detection]:
        start = time.perf_counter()
        try:
            out = list(await self.fast.detect(subjects))
            if len(out) != len(subjects):
                raise ValueError(f"fast detector returned {len(out)} detections "
                                 f"for {len(subjects)} subjects")
        except Exception as exc:  # the guard can still judge
            ms = (time.perf_counter() - start) * 1000
            out = [error_detection(f"fast: {type(exc).__name__}: {exc}", ms) for _ in subjects]
        with self.stats._lock:
            self.stats.judged += len(subjects)
            self.stats.fast_ms += (time.perf_counter() - start) * 1000
        return out

    async def _guard_detect(self, subjects: Sequence[Subject]) -> list[Detection]:
        if not subjects:
            return []
        start = time.perf_counter()
        try:
            out = list(await self.guard.detect(subjects))
            if len(out) != len(subjects):
                raise ValueError(f"guard detector returned {len(out)} detections "
                                 f"for {len(subjects)} subjects")
        except Exception as exc:
            ms = (time.perf_counter() - start) * 1000
            out = [error_detection(f"guard: {type(exc).__name__}: {exc}", ms) for _ in subjects]
        ms = (time.perf_counter() - start) * 1000
        with self.stats._lock:
            self.stats.escalated += len(subjects)
            self.stats.guard_ms += ms
            self.stats.guard_errors += sum(d.status is not Status.OK for d in out)
        log.debug("cascade escalated %d of the batch to the guard model (%.1f ms)",
                  len(subjects), ms)
        return out

    def _merge(self, fast: list[Detection], guarded: Mapping[int, Detection]) -> list[Detection]:
        out = []
        for i, f in enumerate(fast):
            g = guarded.get(i)
            if g is None:
                out.append(f)
            elif g.status is Status.OK:
                out.append(Detection(scores=dict(g.scores), latency_ms=f.latency_ms + g.latency_ms,
                                     embedding=f.embedding))
            elif self.on_guard_error == "fast" and f.status is Status.OK:
                out.append(f)
            else:
                out.append(Detection(scores=dict(f.scores), status=g.status, error=g.error,
                                     latency_ms=f.latency_ms + g.latency_ms,
                                     embedding=f.embedding))
        return out

    async def _detect_speculative(self, subjects: Sequence[Subject]) -> list[Detection]:
        # Guard requests start with the fast check; those for confident
        # subjects are cancelled as soon as the fast scores are in.
        guard_tasks = [asyncio.ensure_future(self._guard_one(s)) for s in subjects]
        try:
            fast = await self._fast_detect(subjects)
        except BaseException:
            for t in guard_tasks:
                t.cancel()
            raise
        guarded: dict[int, Detection] = {}
        for i, d in enumerate(fast):
            if self.uncertain(d):
                guarded[i] = await guard_tasks[i]
            else:
                guard_tasks[i].cancel()
        await asyncio.gather(*guard_tasks, return_exceptions=True)
        with self.stats._lock:
            self.stats.escalated += len(guarded)
            self.stats.guard_errors += sum(d.status is not Status.OK for d in guarded.values())
        return self._merge(fast, guarded)

    async def _guard_one(self, subject: Subject) -> Detection:
        start = time.perf_counter()
        try:
            (d,) = await self.guard.detect([subject])
        except Exception as exc:
            d = error_detection(f"guard: {type(exc).__name__}: {exc}")
        with self.stats._lock:
            self.stats.guard_ms += (time.perf_counter() - start) * 1000
        return d


class CascadeRun:
    """A cascade check in flight (see :meth:`Cascade.start`)."""

    def __init__(self, task: asyncio.Future[list[Detection]]) -> None:
        self._task = task

    def done(self) -> bool:
        return self._task.done()

    async def result(self, timeout_s: float | None = None) -> list[Detection]:
        return await asyncio.wait_for(asyncio.shield(self._task), timeout_s)

    def cancel(self) -> None:
        self._task.cancel()
