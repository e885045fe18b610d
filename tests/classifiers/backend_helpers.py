"""Helpers for the guard-model backend tests: golden files and an
OpenAI-compatible fake server on ``httpx.MockTransport`` (for protocol details
and faults a real server cannot produce on demand)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str) -> str:
    return (GOLDEN / name).read_text(encoding="utf-8")


def golden_inputs() -> dict[str, Any]:
    return json.loads((GOLDEN / "inputs.json").read_text(encoding="utf-8"))


def completion_body(text: str, top: list[dict[str, float]] | None = None) -> dict[str, Any]:
    """A /v1/completions response; ``top`` gives per-token probabilities."""
    choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": "stop"}
    if top is not None:
        choice["logprobs"] = {
            "tokens": [max(t, key=t.__getitem__) for t in top],
            "token_logprobs": [math.log(max(t.values())) for t in top],
            "top_logprobs": [{k: math.log(v) for k, v in t.items()} for t in top],
        }
    return {"object": "text_completion", "choices": [choice]}


def chat_body(text: str, top: list[dict[str, float]] | None = None) -> dict[str, Any]:
    """A /v1/chat/completions response; ``top`` gives per-token probabilities."""
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                              "finish_reason": "stop"}
    if top is not None:
        choice["logprobs"] = {"content": [
            {"token": max(t, key=t.__getitem__), "logprob": math.log(max(t.values())),
             "top_logprobs": [{"token": k, "logprob": math.log(v)} for k, v in t.items()]}
            for t in top]}
    return {"object": "chat.completion", "choices": [choice]}


class FakeServer:
    """Records requests; ``reply(request_json, path)`` returns a JSON body, an
    ``httpx.Response``, or raises an ``httpx`` error."""

    def __init__(self, reply: Callable[[dict[str, Any], str], Any]) -> None:
        self.reply = reply
        self.requests: list[tuple[str, dict[str, Any], httpx.Headers]] = []

    async def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        self.requests.append((request.url.path, body, request.headers))
        out = self.reply(body, request.url.path)
        if asyncio.iscoroutine(out):
            out = await out
        if isinstance(out, httpx.Response):
            return out
        return httpx.Response(200, json=out)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def bodies(self) -> list[dict[str, Any]]:
        return [b for _, b, _ in self.requests]
