"""The HTTP client every guard-model backend shares: an OpenAI-compatible
server (vLLM, llama.cpp, SGLang, TGI, Ollama) reached over ``/v1/completions``
or ``/v1/chat/completions``.

Why a client of our own rather than the ``openai`` package: the backends need
raw ``/v1/completions`` (a pre-rendered prompt), token log-probabilities in
both the legacy and the chat shape, and failure behaviour the gateway can
budget for: a timeout per attempt, bounded retries with jittered exponential
backoff, and a circuit breaker so a dead guard server costs microseconds per
request instead of a timeout each.

Secrets are referenced, never stored: ``api_key`` is a literal, or
``"os.environ/NAME"`` (LiteLLM's spelling), or ``{"$env": "NAME"}``; it is
resolved when the first request needs it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from guardstack import secrets
from guardstack.secrets import SecretRef
from guardstack.urls import normalize_base_url

log = logging.getLogger("guardstack.backends")


#: Statuses worth another attempt: the server is overloaded or restarting.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class BackendError(Exception):
    """The guard server could not give an answer (after retries)."""


class CircuitOpenError(BackendError):
    """Calls are short-circuited because the server failed repeatedly."""


class GuardOutputError(ValueError):
    """The guard model answered, but not in the form its model card documents."""


def resolve_secret(ref: SecretRef) -> str | None:
    """Turn a secret reference into its value (``None`` stays ``None``)."""
    try:
        return secrets.resolve_secret(ref)
    except secrets.SecretError as exc:
        raise BackendError(str(exc)) from None


# -- log-probabilities ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenLogprobs:
    """One generated token and the alternatives the server reported for it."""

    token: str
    top: Mapping[str, float]  # token text -> log-probability


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    tokens: tuple[TokenLogprobs, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def has_logprobs(self) -> bool:
        return bool(self.tokens)


def label_probability(top: Mapping[str, float], positive: Sequence[str],
                      negative: Sequence[str]) -> float | None:
    """P(positive) renormalized over the positive and negative label tokens.

    Token spellings vary by tokenizer (``"unsafe"``, ``" unsafe"``, ``"Unsafe"``),
    so alternatives are matched case-insensitively after stripping. Returns
    ``None`` when neither label is among the reported alternatives; when only
    one is, its own probability is used (P(positive) alone, or 1 - P(negative)).
    """
    pos_set = {p.lower() for p in positive}
    neg_set = {n.lower() for n in negative}
    p_pos = p_neg = 0.0
    for tok, lp in top.items():
        key = tok.strip().lower()
        if key in pos_set:
            p_pos += math.exp(lp)
        elif key in neg_set:
            p_neg += math.exp(lp)
    if p_pos == 0.0 and p_neg == 0.0:
        return None
    if p_neg == 0.0:
        return min(1.0, p_pos)  # lower bound: "safe" had less than the last reported token
    if p_pos == 0.0:
        return max(0.0, 1.0 - p_neg)
    return p_pos / (p_pos + p_neg)


def first_label_token(completion: Completion, labels: Sequence[str]) -> TokenLogprobs | None:
    """The first generated token that spells one of ``labels`` (skipping
    whitespace and format tokens such as ``Safety``/``:``)."""
    wanted = {label.lower() for label in labels}
    for tok in completion.tokens:
        if tok.token.strip().lower() in wanted:
            return tok
    return None


def _parse_legacy_logprobs(lp: Any) -> tuple[TokenLogprobs, ...]:
    # /v1/completions: {"tokens": [...], "top_logprobs": [{tok: lp}, ...]}
    if not isinstance(lp, Mapping):
        return ()
    tokens = lp.get("tokens") or []
    tops = lp.get("top_logprobs") or []
    chosen = lp.get("token_logprobs") or []
    out = []
    for i, tok in enumerate(tokens):
        top = tops[i] if i < len(tops) and isinstance(tops[i], Mapping) else {}
        top = {str(k): float(v) for k, v in top.items() if isinstance(v, int | float)}
        if not top and i < len(chosen) and isinstance(chosen[i], int | float):
            top = {str(tok): float(chosen[i])}
        out.append(TokenLogprobs(str(tok), top))
    return tuple(out)


def _parse_chat_logprobs(lp: Any) -> tuple[TokenLogprobs, ...]:
    # /v1/chat/completions: {"content": [{"token", "logprob", "top_logprobs": [...]}]}
    if not isinstance(lp, Mapping):
        return ()
    out = []
    for item in lp.get("content") or []:
        if not isinstance(item, Mapping) or "token" not in item:
            continue
        top: dict[str, float] = {}
        for alt in item.get("top_logprobs") or []:
            if isinstance(alt, Mapping) and isinstance(alt.get("logprob"), int | float):
                tok = str(alt.get("token", ""))
                top[tok] = max(top.get(tok, -math.inf), float(alt["logprob"]))
        if not top and isinstance(item.get("logprob"), int | float):
            top = {str(item["token"]): float(item["logprob"])}
        out.append(TokenLogprobs(str(item["token"]), top))
    return tuple(out)


# -- circuit breaker -----------------------------------------------------------


class CircuitBreaker:
    """Closed → (``threshold`` consecutive failures) → open for ``reset_after_s``
    → half-open: one trial call; success closes, failure re-opens.

    Thread-safe: a Guard may be shared by threads that each run their own
    event loop.
    """

    def __init__(self, threshold: int = 5, reset_after_s: float = 30.0,
                 clock: Any = time.monotonic) -> None:
        if threshold < 1:
            raise ValueError("circuit breaker threshold must be at least 1")
        self.threshold = threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_after_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        with self._lock:
            state = self._state_locked()
            if state == "closed":
                return True
            if state == "half-open" and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.threshold:
                if self._opened_at is None or self._trial_in_flight:
                    log.warning("guard backend circuit opened after %d failures", self._failures)
                self._opened_at = self._clock()
            self._trial_in_flight = False


# -- the client ----------------------------------------------------------------


@dataclass
class ClientStats:
    requests: int = 0
    attempts: int = 0
    retries: int = 0
    failures: int = 0
    short_circuited: int = 0


class OpenAIClient:
    """Async client for one OpenAI-compatible server and model.

    An ``httpx.AsyncClient`` belongs to the event loop it was first used in,
    so one is kept per running loop; :meth:`aclose` closes the current loop's.
    """

    def __init__(self, base_url: str, model: str, *, api_key: SecretRef = None,
                 timeout: float = 10.0, max_retries: int = 2, backoff_s: float = 0.25,
                 backoff_max_s: float = 4.0, breaker: CircuitBreaker | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        if not model:
            raise ValueError("a backend model name is required (--backend-model)")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if max_retries < 0:
            raise ValueError(f"max_retries must not be negative, got {max_retries}")
        self.base_url = normalize_base_url(base_url)
        self.model = model
        self._api_key_ref = api_key
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.breaker = breaker or CircuitBreaker()
        self._transport = transport
        self._headers = dict(headers or {})
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._lock = threading.Lock()
        self.stats = ClientStats()

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIClient(base_url={self.base_url!r}, model={self.model!r})"

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                headers = {"Content-Type": "application/json", **self._headers}
                key = resolve_secret(self._api_key_ref)
                if key:
                    headers["Authorization"] = f"Bearer {key}"
                client = httpx.AsyncClient(
                    base_url=self.base_url, headers=headers, transport=self._transport,
                    timeout=httpx.Timeout(self.timeout), trust_env=False)
                # Drop clients of loops that have gone away.
                for old in [lp for lp in self._clients if lp.is_closed()]:
                    del self._clients[old]
                self._clients[loop] = client
            return client

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop, if any."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    # -- endpoints -----------------------------------------------------------

    async def complete(self, prompt: str, *, max_tokens: int = 8, logprobs: int | None = 5,
                       extra: Mapping[str, Any] | None = None) -> Completion:
        """``POST /completions`` with a pre-rendered prompt."""
        body: dict[str, Any] = {"model": self.model, "prompt": prompt,
                                "max_tokens": max_tokens, "temperature": 0.0}
        if logprobs:
            body["logprobs"] = int(logprobs)
        body.update(extra or {})
        data = await self.post("/completions", body)
        choice = _first_choice(data)
        text = choice.get("text")
        if not isinstance(text, str):
            raise BackendError("completion response has no text")
        return Completion(text, _parse_legacy_logprobs(choice.get("logprobs")), data)

    async def chat(self, messages: Sequence[Mapping[str, Any]], *, max_tokens: int = 32,
                   logprobs: int | None = 5, extra: Mapping[str, Any] | None = None
                   ) -> Completion:
        """``POST /chat/completions``; the server applies the model's chat template."""
        body: dict[str, Any] = {"model": self.model, "messages": list(messages),
                                "max_tokens": max_tokens, "temperature": 0.0}
        if logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = int(logprobs)
        body.update(extra or {})
        data = await self.post("/chat/completions", body)
        choice = _first_choice(data)
        message = choice.get("message")
        content = message.get("content") if isinstance(message, Mapping) else None
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise BackendError("chat response content is not text")
        return Completion(content, _parse_chat_logprobs(choice.get("logprobs")), data)

    async def post(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """POST with timeout, retries and the circuit breaker; returns the JSON body."""
        self.stats.requests += 1
        if not self.breaker.allow():
            self.stats.short_circuited += 1
            raise CircuitOpenError(
                f"guard backend {self.base_url} is failing; circuit open, retrying after "
                f"{self.breaker.reset_after_s:g} s")
        try:
            data = await self._post_with_retries(path, body)
        except BackendError:
            self.stats.failures += 1
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return data

    async def _post_with_retries(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        client = self._client()
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
            self.stats.attempts += 1
            retry_after: float | None = None
            try:
                resp = await client.post(path, json=body)
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout:g} s"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc or 'connection failed'}"
            else:
                if resp.status_code == 200:
                    try:
                        data = resp.json()
                    except ValueError:
                        raise BackendError(
                            f"{path}: response is not JSON: {resp.text[:120]!r}") from None
                    if not isinstance(data, Mapping):
                        raise BackendError(f"{path}: response JSON is not an object")
                    return data
                last = f"HTTP {resp.status_code}: {_error_text(resp)}"
                if resp.status_code not in RETRY_STATUSES:
                    raise BackendError(f"{path}: {last}")
                retry_after = _retry_after(resp)
            if attempt < self.max_retries:
                delay = self._backoff(attempt, retry_after)
                log.info("guard backend %s%s: %s; retry %d in %.2f s", self.base_url, path,
                         last, attempt + 1, delay)
                await asyncio.sleep(delay)
        raise BackendError(f"{path}: {last} (after {self.max_retries + 1} attempts)")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        # Full jitter: spreads the retries of many concurrent requests.
        cap = min(self.backoff_max_s, self.backoff_s * (2 ** attempt))
        return random.uniform(cap / 2, cap)


def _first_choice(data: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise BackendError("response has no choices")
    return choices[0]


def _error_text(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:200] or resp.reason_phrase
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping) and err.get("message"):
            return str(err["message"])[:200]
        if isinstance(err, str):
            return err[:200]
        if data.get("detail"):
            return str(data["detail"])[:200]
    return resp.text[:200]


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
