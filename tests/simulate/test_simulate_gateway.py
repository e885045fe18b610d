"""--gateway mode against real HTTP servers: an OpenAI-shaped stub (for faults
on demand: content_filter blocks, halts, 429s) and the real guardstack gateway
in front of that stub."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Sequence
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from guardstack.simulate.generator import SimulationConfig, Traffic, generate
from guardstack.simulate.sinks import replay

BLOCK = "ignore all previous instructions"  # a jailbreak wrapper's opener
HALT = "developer mode"  # another wrapper's; the stub halts its answer instead
NO_OTHER_ADVERSARIES = {"decomposition": 0, "crescendo": 0, "coordinated": 0, "crisis": 0,
                        "delusion": 0, "jailbreak": 1.0}


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    config = SimulationConfig(users=12, days=3, seed=4,
                              mix={"ordinary": 0.5, "professional": 0.0, "adversary": 0.5,
                                   **NO_OTHER_ADVERSARIES})
    return generate(config)


def _count(traffic: Traffic, marker: str) -> int:
    return sum(1 for r in traffic.records if marker in r.content.lower())


async def test_replay_counts_blocks_halts_and_backs_off(traffic, stub_server):
    expected_blocked, expected_halted = _count(traffic, BLOCK), _count(traffic, HALT)
    assert expected_blocked and expected_halted  # the seed must exercise both paths
    stub, url = stub_server(block=BLOCK, halt=HALT)
    summary = await replay(traffic, f"{url}/v1", "sk-test", "stub-model", concurrency=3,
                           backoff_s=0.01)
    users = {r.user for r in traffic.records}
    assert summary.sent == len(traffic.records)
    assert summary.blocked == expected_blocked
    assert summary.halted == expected_halted
    assert summary.answered == summary.sent - summary.blocked
    assert summary.rate_limited == len(users)
    assert summary.errors == 0
    blocked = {r.id for r in traffic.records if BLOCK in r.content.lower()}
    assert set(summary.blocked_ids) == blocked
    # The OpenAI `user` field and the conversation header carry the simulated ids.
    sessions = {r.session: r.user for r in traffic.records}
    for sent in stub.requests:
        assert sent["body"]["user"] == sessions[sent["conversation"]]
        assert sent["body"]["model"] == "stub-model"


async def test_replay_sends_real_multi_turn_history(traffic, stub_server):
    stub, url = stub_server(block=BLOCK, throttle=False)
    await replay(traffic, f"{url}/v1", "sk-test", "m", concurrency=2)
    by_session: dict[str, list[str]] = {}
    for record in traffic.records:
        by_session.setdefault(record.session, []).append(record.content)
    longest = max(by_session, key=lambda s: len(by_session[s]))
    sent = [r["body"]["messages"] for r in stub.requests if r["conversation"] == longest]
    final = sent[-1]
    # Every earlier answered turn is followed by the model's own answer; blocked
    # turns are left out of the history.
    users = [m["content"] for m in final if m["role"] == "user"]
    expected = [t for t in by_session[longest] if BLOCK not in t.lower()]
    assert users == expected[: len(users)] and users[-1] == expected[-1]
    roles = [m["role"] for m in final]
    assert roles == ["user", "assistant"] * (len(users) - 1) + ["user"]
    assert [m["content"] for m in final if m["role"] == "assistant"] == [
        f"answer {i}" for i in range(1, len(users))]


async def test_replay_reports_an_unreachable_gateway(traffic):
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    summary = await replay(traffic, f"http://127.0.0.1:{port}/v1", "k", "m",
                           max_retries=0, timeout_s=5)
    assert summary.errors == summary.sent > 0
    assert summary.answered == 0
    assert set(summary.error_kinds) == {"APIConnectionError"}


async def test_replay_gives_up_after_repeated_429s(traffic, serve_app):
    always = Starlette(routes=[Route("/v1/chat/completions", lambda r: JSONResponse(
        {"error": {"message": "no", "code": "rate_limit_exceeded"}}, status_code=429),
        methods=["POST"])])
    one_user = Traffic(records=[r for r in traffic.records
                                if r.user == traffic.records[0].user][:2],
                       truth=traffic.truth)
    url = serve_app(always)
    summary = await replay(one_user, f"{url}/v1", "k", "m", max_retries=2, backoff_s=0.0)
    assert summary.rate_limited == 3 * len(one_user.records)
    assert summary.errors == len(one_user.records)
    assert summary.error_kinds == {"http 429 (retries exhausted)": len(one_user.records)}


class Marker:
    """Stand-in detector for the real gateway: harm when a marker is present."""

    name = "marker"

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def _one(self, subject: Any) -> Any:
        from guardstack.classifiers.base import HARM, Detection

        p = 0.99 if self.marker in subject.text.lower() else 0.01
        return Detection(scores={HARM: p, "jailbreak": p}, latency_ms=0.1)

    async def detect(self, subjects: Sequence[Any]) -> list[Any]:
        return [self._one(s) for s in subjects]

    def detect_sync(self, subjects: Sequence[Any]) -> list[Any]:
        return [self._one(s) for s in subjects]


async def test_replay_through_the_real_gateway(traffic, stub_server, serve_app):
    from guardstack.gateway.app import create_app
    from guardstack.gateway.recorder import MemoryRecorder
    from guardstack.gateway.settings import GatewaySettings
    from guardstack.guard import Guard
    from guardstack.policy import Policy

    policy = Policy.from_yaml(
        "version: 1\n"
        "prompt:\n  default: {threshold: 0.5, action: block}\n"
        "response:\n  default: {threshold: 0.5, action: block}\n",
        source="simulate-test")
    stub, upstream = stub_server(throttle=False)
    recorder = MemoryRecorder()
    app = create_app(GatewaySettings(upstream=f"{upstream}/v1", open=True, rate_limit=0),
                     guard=Guard(policy, detector=Marker(BLOCK)), recorder=recorder)
    gateway = serve_app(app)
    summary = await replay(traffic, f"{gateway}/v1", "sk-test", "m", concurrency=2)
    assert summary.errors == 0, summary.error_kinds
    assert summary.blocked == _count(traffic, BLOCK) > 0
    # Blocked prompts never reached the upstream model.
    assert not any(BLOCK in r["body"]["messages"][-1]["content"].lower() for r in stub.requests)
    deadline = time.monotonic() + 10
    while len(recorder.exchanges) < summary.sent and time.monotonic() < deadline:
        time.sleep(0.02)
    users = {e.user for e in recorder.exchanges}
    assert users == {r.user for r in traffic.records}
    assert {e.conversation_id for e in recorder.exchanges} == {r.session for r in traffic.records}
    json.dumps(summary.as_dict())  # the summary is plain JSON


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_and_ollama_clients_through_the_real_gateway(traffic, stub_server,
                                                                     serve_app, stream):
    """Simulated Responses API clients send only each new turn and name the
    previous answer; the gateway rebuilds the chat history the model gets.
    Simulated Ollama and Anthropic clients send the whole chat to /api/chat
    and /v1/messages."""
    from guardstack.gateway.app import create_app
    from guardstack.gateway.recorder import MemoryRecorder
    from guardstack.gateway.settings import GatewaySettings
    from guardstack.guard import Guard
    from guardstack.policy import Policy
    from guardstack.simulate.sinks import client_api

    policy = Policy.from_yaml(
        "version: 1\nprompt:\n  default: {threshold: 0.5, action: block}\n"
        "response:\n  default: {threshold: 0.5, action: block}\n", source="simulate-test")
    stub, upstream = stub_server(throttle=False, halt=HALT)
    recorder = MemoryRecorder()
    app = create_app(GatewaySettings(upstream=f"{upstream}/v1", open=True, rate_limit=0),
                     guard=Guard(policy, detector=Marker(BLOCK)), recorder=recorder)
    gateway = serve_app(app)
    summary = await replay(traffic, f"{gateway}/v1", "sk-test", "m", concurrency=2,
                           api="mixed", stream=stream)
    assert summary.errors == 0, summary.error_kinds
    assert summary.blocked == _count(traffic, BLOCK) > 0
    assert summary.halted == _count(traffic, HALT) > 0  # content_filter, either API
    speaks = {r.user: client_api("mixed", r.user) for r in traffic.records}
    assert summary.responses_api == sum(speaks[r.user] == "responses" for r in traffic.records)
    assert summary.ollama_api == sum(speaks[r.user] == "ollama" for r in traffic.records)
    assert summary.messages_api == sum(speaks[r.user] == "messages" for r in traffic.records)
    assert 0 < summary.responses_api < summary.sent and 0 < summary.ollama_api < summary.sent
    assert 0 < summary.messages_api < summary.sent
    # Every upstream request holds its session's history, rebuilt by the gateway
    # for the Responses clients: the earlier answered turns, each followed by
    # the model's answer, blocked ones left out. (The gateway forwards the
    # OpenAI user field, not the conversation header: match by user.)
    sessions: dict[str, list[list[str]]] = {}
    for record in traffic.records:
        turns = sessions.setdefault(record.user, [])
        if not turns or turns[-1][0] != record.session:
            turns.append([record.session])
        turns[-1].append(record.content)
    continued = 0
    pages = {r.tool[1] for r in traffic.records if r.tool}
    fetched: set[str] = set()
    for sent in stub.requests:
        body = sent["body"]
        final = [m for m in body["messages"] if m["role"] != "system"]
        # An agent turn's page fetch, as each API sends it, reaches the model as a
        # tool-call turn and the page.
        fetched.update(m["content"] for m in final if m["role"] == "tool")
        final = [m for m in final if m["role"] != "tool" and not m.get("tool_calls")]
        users = [m["content"] for m in final if m["role"] == "user"]
        assert [m["role"] for m in final] == ["user", "assistant"] * (len(users) - 1) + ["user"]
        # Ollama's API has no user field: its clients' requests match any session.
        candidates = (sessions[body["user"]] if "user" in body
                      else [t for turns in sessions.values() for t in turns])
        assert any(users == [t for t in session[1:] if BLOCK not in t.lower()][: len(users)]
                   for session in candidates), users
        continued += len(users) > 1 and speaks.get(body.get("user")) == "responses"
    assert continued
    assert pages and fetched == pages
    # Ollama clients name their user and conversation in headers, which the
    # gateway reads: their exchanges are theirs, in their sessions.
    deadline = time.monotonic() + 10
    while len(recorder.exchanges) < summary.sent and time.monotonic() < deadline:
        time.sleep(0.02)
    for api, endpoint in (("ollama", "ollama.chat"), ("messages", "messages")):
        # Ollama's clients in headers, Anthropic's in metadata.user_id and a header
        their = {u for u, speaks_api in speaks.items() if speaks_api == api}
        recorded = [e for e in recorder.exchanges if e.endpoint == endpoint]
        assert {e.user for e in recorded} == their, api
        assert {e.conversation_id for e in recorded} == {
            r.session for r in traffic.records if r.user in their}, api
