"""Gateway test fixtures. Stand-in detectors live in standins.py, the
uvicorn runner in serving.py."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from tests.gateway.scripted import ScriptedUpstream
from tests.gateway.serving import Running, serve_app

from guardstack.gateway.app import create_app
from guardstack.gateway.recorder import MemoryRecorder
from guardstack.gateway.settings import GatewaySettings


@pytest.fixture
def run_gateway() -> Iterator[Callable[..., Running]]:
    """``run_gateway(upstream_url, guard=..., **settings)`` → a served gateway."""
    stack = contextlib.ExitStack()

    def start(upstream: str, *, guard: Any, keys: Any = None, states: Any = None,
              transport: httpx.AsyncBaseTransport | None = None, rate_buckets: Any = None,
              shared_responses: Any = None, tracing: Any = None, **settings: Any) -> Running:
        settings.setdefault("open", True)
        settings.setdefault("rate_limit", 0)
        # A loaded CI machine can take minutes for a completion; the tests that
        # are about timeouts set their own.
        settings.setdefault("upstream_timeout", 600)
        recorder = MemoryRecorder()
        probe = settings.pop("probe_upstream", False)
        app = create_app(GatewaySettings(upstream=upstream, **settings), guard=guard,
                         recorder=recorder, keys=keys, states=states, transport=transport,
                         probe_upstream=probe, rate_buckets=rate_buckets,
                         shared_responses=shared_responses, tracing=tracing)
        url = stack.enter_context(serve_app(app))
        return Running(url, app, recorder)

    with stack:
        yield start


@pytest.fixture
def client() -> Iterator[Callable[[str], openai.OpenAI]]:
    """``client(url)`` → an official OpenAI client for a server; closed after the test."""
    made: list[openai.OpenAI] = []

    def make(url: str) -> openai.OpenAI:
        made.append(openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0))
        return made[-1]

    yield make
    for c in made:
        c.close()


@pytest.fixture
def ollama_client() -> Iterator[Callable[..., Any]]:
    """``ollama_client(url, **kw)`` → the official ``ollama`` client for a
    server; closed after the test."""
    import ollama

    made: list[ollama.Client] = []

    def make(url: str, **kw: Any) -> ollama.Client:
        made.append(ollama.Client(host=url, **kw))
        return made[-1]

    yield make
    for c in made:
        c.close()


@pytest.fixture
def scripted() -> Iterator[list[ScriptedUpstream]]:
    """Scripted upstreams made with ``scripted.upstream(...)``; closed after the test."""
    servers: list[ScriptedUpstream] = []
    yield servers
    for s in servers:
        s.close()


@pytest.fixture
def anthropic_client() -> Iterator[Callable[..., Any]]:
    """``anthropic_client(url, **kw)`` → Anthropic's official client for a
    server; closed after the test."""
    import anthropic

    made: list[anthropic.Anthropic] = []

    def make(url: str, **kw: Any) -> anthropic.Anthropic:
        kw.setdefault("api_key", "unused")
        made.append(anthropic.Anthropic(base_url=url, max_retries=0, **kw))
        return made[-1]

    yield make
    for c in made:
        c.close()
