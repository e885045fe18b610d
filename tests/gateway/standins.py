"""Stand-in detectors and policies for gateway logic tests that need a
deterministic verdict, and a small model server that records what reached
it. End-to-end tests use the real default detector."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guardstack.classifiers.base import HARM, Detection, Subject
from guardstack.guard import Guard
from guardstack.policy import Policy


class MarkerDetector:
    """Stand-in detector: scores 0.99 harm (violent_crime) when the text
    contains one of ``markers`` (case-insensitive), else 0.01. Lets a test
    decide which text is "unsafe" without depending on a model's scores."""

    name = "marker"

    def __init__(self, *markers: str, roles: Sequence[str] = ("prompt", "response")) -> None:
        self.markers = tuple(m.lower() for m in markers)
        self.roles = tuple(roles)
        self.calls: list[Subject] = []

    def _one(self, s: Subject) -> Detection:
        self.calls.append(s)
        hit = s.role in self.roles and any(m in s.text.lower() for m in self.markers)
        p = 0.99 if hit else 0.01
        return Detection(scores={HARM: p, "violent_crime": p}, latency_ms=0.1,
                         embedding=[1.0, 0.0, 0.0])

    async def detect(self, subjects: Sequence[Subject]) -> list[Detection]:
        return [self._one(s) for s in subjects]

    def detect_sync(self, subjects: Sequence[Subject]) -> list[Detection]:
        return [self._one(s) for s in subjects]


class ScoreDetector:
    """Stand-in detector with middling scores: ``SURE`` in a text scores 0.95
    harm (cbrn), ``MIDDLING`` 0.7, anything else 0.01. For the policy's
    second tiers, which a marker's 0.99 / 0.01 cannot reach."""

    name = "scores"

    def __init__(self) -> None:
        self.calls: list[Subject] = []

    def _one(self, s: Subject) -> Detection:
        self.calls.append(s)
        p = 0.95 if "SURE" in s.text else 0.7 if "MIDDLING" in s.text else 0.01
        return Detection(scores={HARM: p, "cbrn": p}, latency_ms=0.1)

    async def detect(self, subjects: Sequence[Subject]) -> list[Detection]:
        return [self._one(s) for s in subjects]

    def detect_sync(self, subjects: Sequence[Subject]) -> list[Detection]:
        return [self._one(s) for s in subjects]


#: Prompts flagged from 0.5 and blocked from 0.9; answers halted from 0.5,
#: or from 0.9 when the prompt was clean; tool results read and flagged.
TWO_TIER_POLICY = """
version: 1
prompt:
  default: {threshold: 0.5, action: flag}
  categories:
    harm: {threshold: 0.9, action: block}
response:
  default: {threshold: 0.5, action: block}
  clean_prompt_threshold: 0.9
tool_output: {action: flag}
"""


class BrokenDetector:
    """Stand-in detector that raises, or hangs for ``hang`` seconds."""

    name = "broken"

    def __init__(self, hang: float = 0.0) -> None:
        self.hang = hang

    async def detect(self, subjects: Sequence[Subject]) -> list[Detection]:
        if self.hang:
            await asyncio.sleep(self.hang)
        raise RuntimeError("classifier exploded")

    def detect_sync(self, subjects: Sequence[Subject]) -> list[Detection]:
        raise RuntimeError("classifier exploded")


def policy_yaml(*, on_error: str = "open", timeout_ms: int = 2000,
                prompt_threshold: float = 0.5, response_threshold: float = 0.5,
                system_prompt_models: Sequence[str] = (), judge_history: bool | str = False
                ) -> Policy:
    models = "".join(f"\n  - \"{m}\"" for m in system_prompt_models) or " []"
    text = f"""
version: 1
prompt:
  on_error: {on_error}
  timeout_ms: {timeout_ms}
  default: {{threshold: {prompt_threshold}, action: block}}
  judge_history: {str(judge_history).lower() if isinstance(judge_history, bool) else judge_history}
response:
  on_error: {on_error}
  timeout_ms: {timeout_ms}
  default: {{threshold: {response_threshold}, action: block}}
safety_system_prompt: "Be safe and kind. GUARDSTACK-SAFETY-PROMPT."
system_prompt_models:{models}
"""
    return Policy.from_yaml(text, source="test-policy")


def marker_guard(*markers: str, roles: Sequence[str] = ("prompt", "response"),
                 **policy: Any) -> Guard:
    return Guard(policy_yaml(**policy), detector=MarkerDetector(*markers, roles=roles))


def listing_upstream(requests: list[dict[str, Any]],
                     names: Sequence[str] | None = ("other-model", "smollm2-lookalike"),
                     asked: list[int] | None = None) -> Starlette:
    """A model server (real HTTP) that lists ``names`` (None: its list fails
    with HTTP 500) and answers every chat with "From the other.", recording
    each request's body in ``requests`` (and each list request in ``asked``)."""
    async def chat(request: Request) -> Response:
        body = await request.json()
        requests.append(body)
        return JSONResponse({"id": "c1", "object": "chat.completion", "created": 1,
                             "model": body["model"], "choices": [{
                                 "index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "From the other."}}]})

    async def models(request: Request) -> Response:
        if asked is not None:
            asked.append(1)
        if names is None:
            return JSONResponse({"error": "no list here"}, status_code=500)
        # As llama.cpp's server answers: the OpenAI list, and its own "models" beside it.
        return JSONResponse({"object": "list", "data": [
            {"id": n, "object": "model", "owned_by": "other"} for n in names],
            "models": [{"name": n} for n in names]})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/v1/models", models, methods=["GET"])])
