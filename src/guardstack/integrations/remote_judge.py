"""A :class:`~guardstack.gateway.judge.Judge` that asks a running guardstack
gateway instead of a local classifier: ``POST /v1/moderations``, one input per
subject, the verdict read back from each result's ``guardstack`` key.

The gateway's policy decides each verdict. When the gateway cannot answer
(refused connection, timeout, an error status, a body that is not a
moderation response), the local policy's ``<role>.on_error`` decides, exactly
as it does for a local classifier that fails: callers get a ``status=error``
verdict, never an exception.

OpenAI's moderation schema carries neither a role nor a conversation; the
request's ``guardstack`` object (the gateway's extension) carries both, so a
model's answer is judged as a response, in the conversation it answers.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from guardstack.classifiers.base import Message, Subject, error_detection
from guardstack.gateway.judge import Judge, Judgement
from guardstack.gateway.validation import ROLES
from guardstack.guard import Guard
from guardstack.policy import Policy
from guardstack.verdict import Action, Status, Verdict

#: The detector name error verdicts carry when the gateway did not answer.
DETECTOR = "guardstack-remote"


class GatewayAnswerError(Exception):
    """The gateway answered, but not with a usable moderation response."""


class RemoteJudge(Judge):
    def __init__(self, policy: Policy, api_base: str, *, api_key: str | None = None) -> None:
        # The Guard is never asked to detect: only its policy is used, for the
        # fail-open/fail-closed verdict and the per-role timeout (timeout_ms).
        super().__init__(Guard(policy))
        self.url = moderations_url(api_base)
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        # An AsyncClient belongs to the event loop it first ran on; tests and
        # SDK users may call from several loops, the proxy from one.
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        #: The end user the judged texts are from, sent as the moderation
        #: request's ``user`` (:meth:`on_behalf_of`).
        self.end_user: str | None = None
        self._root = self  # the judge whose connections a per-user view shares

    def on_behalf_of(self, end_user: str | None) -> RemoteJudge:
        """This judge, asking for ``end_user``: the gateway records the texts
        as theirs when its key was issued with ``keys add --end-users``
        (else under the key's own user, with ``end_user`` noted). The view
        shares this judge's connections."""
        if not end_user:
            return self
        view = copy.copy(self)
        view.end_user = end_user
        return view

    async def load(self) -> None:
        self.loaded = True  # nothing to load: the gateway holds the classifier

    @property
    def detector_name(self) -> str:
        return DETECTOR

    def _http(self) -> httpx.AsyncClient:
        root, loop = self._root, asyncio.get_running_loop()
        if root._client is None or root._client_loop is not loop:
            root._client = httpx.AsyncClient(headers=self._headers)
            root._client_loop = loop
        return root._client

    async def aclose(self) -> None:
        root = self._root
        if root._client is not None and root._client_loop is asyncio.get_running_loop():
            await root._client.aclose()
        root._client = root._client_loop = None

    async def judge(self, subjects: Sequence[Subject], policy: Policy | None = None, *,
                    prompt_clean: bool = False) -> list[Judgement]:
        # The gateway's policy decides (``policy`` has no say here); one
        # request judges texts of one role in one conversation.
        groups: dict[tuple[str, tuple[Message, ...]], list[int]] = {}
        for i, s in enumerate(subjects):
            groups.setdefault((s.role, s.context), []).append(i)
        parts = await asyncio.gather(*(self._ask([subjects[i] for i in indexes], prompt_clean)
                                       for indexes in groups.values()))
        out: list[Judgement | None] = [None] * len(subjects)
        for indexes, judgements in zip(groups.values(), parts, strict=True):
            for i, j in zip(indexes, judgements, strict=True):
                out[i] = j
        return [j for j in out if j is not None]

    async def _ask(self, subjects: Sequence[Subject], prompt_clean: bool = False,
                   ) -> list[Judgement]:
        first = subjects[0]
        # The gateway refuses roles outside OpenAI's; as context such a turn reads as input.
        context = [{"role": m.role if m.role in ROLES else "user", "content": m.content}
                   for m in first.context]
        body: dict[str, Any] = {"input": [s.text for s in subjects],
                                "guardstack": {"role": first.role, "context": context}}
        if prompt_clean and first.role == "response":
            body["guardstack"]["prompt_clean"] = True
        if self.end_user:
            body["user"] = self.end_user
        start = time.perf_counter()
        try:
            response = await self._http().post(self.url, json=body,
                                               timeout=self.guard.timeout_s(subjects))
            ms = (time.perf_counter() - start) * 1000
            results = _results(response, len(subjects))
            return [Judgement(_verdict(r, first.role, ms)) for r in results]
        except (httpx.HTTPError, GatewayAnswerError) as exc:
            ms = (time.perf_counter() - start) * 1000
            reason = _describe(exc)
            return [Judgement(self.policy.decide(s.role, error_detection(reason, ms), DETECTOR))
                    for s in subjects]


def moderations_url(api_base: str) -> str:
    """``http://host:8000``, ``http://host:8000/`` and ``http://host:8000/v1``
    all name the same gateway."""
    base = api_base.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"api_base must be an http(s) URL of a guardstack gateway, "
                         f"got {api_base!r}")
    if not base.endswith("/v1"):
        base += "/v1"
    return base + "/moderations"


def _results(response: httpx.Response, expected: int) -> list[Mapping[str, Any]]:
    if response.status_code != 200:
        raise GatewayAnswerError(f"gateway answered {response.status_code}: "
                                 f"{_error_message(response)}")
    try:
        results = response.json()["results"]
    except (ValueError, KeyError, TypeError):
        raise GatewayAnswerError("gateway answered 200 without a moderation response") from None
    if not isinstance(results, list):
        raise GatewayAnswerError("gateway answered 200 without a list of results")
    if len(results) != expected:
        raise GatewayAnswerError(f"gateway returned {len(results)} results for {expected} inputs")
    return results


def _verdict(result: Mapping[str, Any], role: str, latency_ms: float) -> Verdict:
    try:
        ours = result["guardstack"]
        return Verdict(
            decision=Action(ours["decision"]),
            role=role,
            scores={str(k): float(v) for k, v in ours["category_scores"].items()},
            categories=tuple(str(c) for c in ours["categories"]),
            detector=str(ours.get("detector") or DETECTOR),
            status=Status(ours["status"]),
            latency_ms=latency_ms,
            reason=str(ours.get("reason", "")),
            blocklists=tuple(str(b) for b in ours.get("blocklists") or ()),
            topics=tuple(str(t) for t in ours.get("topics") or ()),
            monitored=bool(ours.get("monitored", False)),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise GatewayAnswerError("gateway result has no usable 'guardstack' verdict "
                                 "(is api_base a guardstack gateway?)") from None


def _error_message(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or "(empty body)"
    return str(message)


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"guardstack gateway timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.HTTPError):
        return f"guardstack gateway unreachable ({type(exc).__name__}: {exc})"
    return str(exc)
