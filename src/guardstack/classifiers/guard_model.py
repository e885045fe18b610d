"""What every guard-model backend shares: the constructor options, bounded
concurrency, one judgement per subject, and the rule that a failure of any
kind becomes a ``status=error`` :class:`Detection` (never an exception), so
the policy's fail-open / fail-closed setting decides.

A backend subclass implements :meth:`GuardModelBackend.judge` (one subject →
scores) using ``self.client`` and raises :class:`GuardOutputError` when the
model's answer does not parse.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from guardstack.classifiers.base import Detection, Message, Subject, error_detection
from guardstack.classifiers.openai_backend import (
    BackendError,
    CircuitBreaker,
    GuardOutputError,
    OpenAIClient,
    SecretRef,
)

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000/v1"


class GuardModelBackend:
    """Base class of the guard-model detectors (Detector protocol)."""

    name = "guard-model"
    #: Model name used when none is given (the Hugging Face id vLLM serves under).
    default_model = ""

    def __init__(self, base_url: str | None = None, model: str | None = None, *,
                 api_key: SecretRef = None, timeout: float = 10.0, max_retries: int = 2,
                 concurrency: int = 8, breaker_threshold: int = 5,
                 breaker_reset_s: float = 30.0, logprobs: bool = True,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        # Without explicit settings (a policy file naming only the detector),
        # the environment says where the guard server is.
        self.client = OpenAIClient(
            base_url or os.environ.get("GUARDSTACK_BACKEND_URL") or DEFAULT_URL,
            model or os.environ.get("GUARDSTACK_BACKEND_MODEL") or self.default_model,
            api_key=api_key, timeout=timeout, max_retries=max_retries, transport=transport,
            breaker=CircuitBreaker(breaker_threshold, breaker_reset_s))
        self.concurrency = int(concurrency)
        self.logprobs = bool(logprobs)
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.client.base_url!r}, model={self.client.model!r})"

    # -- the one thing a backend implements ---------------------------------

    async def judge(self, subject: Subject) -> Mapping[str, float]:
        """Scores (``harm`` + taxonomy ids) for one subject."""
        raise NotImplementedError

    # -- Detector protocol ----------------------------------------------------

    async def detect(self, subjects: Sequence[Subject]) -> list[Detection]:
        return list(await asyncio.gather(*(self._detect_one(s) for s in subjects)))

    def detect_sync(self, subjects: Sequence[Subject]) -> list[Detection]:
        return run_sync(lambda: self._detect_and_close(subjects))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> GuardModelBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- internals ------------------------------------------------------------

    async def _detect_and_close(self, subjects: Sequence[Subject]) -> list[Detection]:
        # The sync path runs in a fresh event loop: close its HTTP client
        # before that loop ends.
        try:
            return await self.detect(subjects)
        finally:
            await self.aclose()

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            sem = self._semaphores.get(loop)
            if sem is None:
                for old in [lp for lp in self._semaphores if lp.is_closed()]:
                    del self._semaphores[old]
                sem = self._semaphores[loop] = asyncio.Semaphore(self.concurrency)
            return sem

    async def _detect_one(self, subject: Subject) -> Detection:
        start = time.perf_counter()
        try:
            if not isinstance(subject.text, str):
                raise GuardOutputError(f"subject text must be a string, got "
                                       f"{type(subject.text).__name__}")
            async with self._semaphore():
                scores = await self.judge(subject)
        except GuardOutputError as exc:
            return error_detection(f"{self.name}: unparseable guard output: {exc}",
                                   _ms(start))
        except BackendError as exc:
            return error_detection(f"{self.name}: {exc}", _ms(start))
        except Exception as exc:  # a broken backend must never take the caller down
            return error_detection(f"{self.name}: {type(exc).__name__}: {exc}", _ms(start))
        return Detection(scores=dict(scores), latency_ms=_ms(start))


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, also when the
    caller is itself inside a running event loop (then in a worker thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(factory))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(_await(factory))).result()


async def _await(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


# -- conversation helpers shared by the prompt renderers ------------------------


def conversation(subject: Subject) -> list[Message]:
    """The user/assistant turns ending with the judged text, in order.

    System and tool messages are dropped: no guard model card defines how to
    render them, and Llama Guard's template rejects roles other than
    user/assistant.
    """
    turns = [m for m in subject.context if m.role in ("user", "assistant")]
    last_role = "assistant" if subject.role == "response" else "user"
    turns.append(Message(last_role, subject.text))
    return turns


def last_user_text(subject: Subject) -> str:
    """For a response: the prompt it answers (empty when unknown)."""
    for m in reversed(subject.context):
        if m.role == "user":
            return m.content
    return ""


def merge_max(target: dict[str, float], key: str, value: float) -> None:
    target[key] = max(target.get(key, 0.0), float(value))


def options_from(kwargs: Mapping[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(unknown)}")
    return dict(kwargs)
