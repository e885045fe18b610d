"""What the gateway sends upstream: the body as the client sent it, the
upstream's API key, a user agent, and never a cookie an earlier response set
(a proxy shared by many users must not carry one user's cookies into
another's requests). The upstream is a real Starlette app on loopback that
records what it receives."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.gateway.serving import serve_app
from tests.gateway.standins import marker_guard

from guardstack import __version__


def recording_upstream(seen: list[dict[str, Any]]) -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        seen.append({"headers": dict(request.headers), "body": await request.body()})
        reply = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": "Cats purr."}}]}
        response = JSONResponse(reply)
        response.set_cookie("session", f"user-{len(seen)}")
        return response

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def test_upstream_gets_the_body_key_and_agent_but_no_cookies(run_gateway):
    seen: list[dict[str, Any]] = []
    with serve_app(recording_upstream(seen)) as up:
        gw = run_gateway(up + "/v1", guard=marker_guard("FORBIDDEN"),
                         upstream_api_key="sk-upstream")
        bodies = [{"model": "m", "messages": [{"role": "user", "content": f"Hi {i}, café?"}],
                   "temperature": 0.5} for i in range(3)]
        for body in bodies:
            r = httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=30)
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == "Cats purr."
    assert len(seen) == 3
    for body, got in zip(bodies, seen, strict=True):
        assert json.loads(got["body"]) == body
        assert got["headers"]["authorization"] == "Bearer sk-upstream"
        assert got["headers"]["content-type"] == "application/json"
        assert got["headers"]["user-agent"] == f"guardstack/{__version__}"
        assert "cookie" not in got["headers"]
