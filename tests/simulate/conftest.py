"""Helpers for the simulator's --gateway tests: serve any ASGI app with
uvicorn on a free loopback port (the gateway tests' runner), and an
OpenAI-shaped stub that produces the faults a real model server cannot
produce on demand."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from tests.gateway import serving


class Stub:
    """OpenAI-shaped chat completions, streamed when asked: 400 content_filter
    when the last user turn contains ``block`` (lower case), finish_reason
    content_filter when it contains ``halt``, and one 429 for each user's very
    first request."""

    def __init__(self, *, block: str | None = None, halt: str | None = None,
                 throttle: bool = True) -> None:
        self.requests: list[dict[str, Any]] = []
        self.block, self.halt, self.throttle = block, halt, throttle
        self.throttled: set[str] = set()
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> JSONResponse | StreamingResponse:
        body = await request.json()
        user = body.get("user", "")
        if self.throttle and user not in self.throttled:
            self.throttled.add(user)
            return JSONResponse({"error": {"message": "slow down", "type": "rate_limit",
                                           "code": "rate_limit_exceeded"}},
                                status_code=429, headers={"retry-after": "0"})
        self.requests.append({"body": body, "conversation": request.headers.get(
            "x-conversation-id")})
        last = body["messages"][-1]["content"].lower()
        if self.block and self.block in last:
            return JSONResponse({"error": {"message": "blocked by policy", "type":
                                           "invalid_request_error", "param": "prompt",
                                           "code": "content_filter"}}, status_code=400)
        finish = "content_filter" if self.halt and self.halt in last else "stop"
        turn = sum(1 for m in body["messages"] if m["role"] == "user")
        if body.get("stream"):
            return StreamingResponse(self._events(body["model"], f"answer {turn}", finish),
                                     media_type="text/event-stream")
        return JSONResponse({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
            "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": f"answer {turn}"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    @staticmethod
    async def _events(model: str, text: str, finish: str) -> AsyncIterator[bytes]:
        """The same answer streamed as chat-completion chunks, word by word."""
        def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
            return b"data: " + json.dumps({
                "id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 0,
                "model": model, "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": reason}]}).encode() + b"\n\n"
        yield chunk({"role": "assistant", "content": ""})
        for i, word in enumerate(text.split()):
            yield chunk({"content": (" " if i else "") + word})
        yield chunk({}, finish)
        yield b"data: [DONE]\n\n"



@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], str]]:
    """``serve_app(app)`` → base URL of the app served until the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(serving.serve_app(app))


@pytest.fixture
def stub_server(serve_app: Callable[[Any], str]) -> Callable[..., tuple[Stub, str]]:
    """``stub_server(block=..., halt=..., throttle=...)`` → (stub, base URL)."""

    def start(**kwargs: Any) -> tuple[Stub, str]:
        stub = Stub(**kwargs)
        return stub, serve_app(stub.app)

    return start
