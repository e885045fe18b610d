"""Fixtures for the LiteLLM guardrail tests: a real guardstack gateway served
over HTTP (remote mode), the guardrail registered with litellm the way the
proxy and SDK register callbacks, and addresses nothing listens on (an
unreachable gateway; an upstream that proves a request was never forwarded:
reaching it is a connection error, not a guardrail's)."""

from __future__ import annotations

import os

# litellm fetches its model price map from GitHub when it is imported; the
# suite runs without the internet, where that costs three retries (about a minute).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import litellm
import pytest
from tests.fixtures.llama_server import free_port
from tests.gateway.serving import Running, serve_app
from tests.gateway.standins import marker_guard

from guardstack.gateway.app import create_app
from guardstack.gateway.recorder import MemoryRecorder
from guardstack.gateway.settings import GatewaySettings
from guardstack.guard import Guard
from guardstack.integrations.litellm_guardrail import GuardstackGuardrail


def _serve(stack: contextlib.ExitStack, guard: Guard, keys: Any = None,
           states: Any = None) -> Running:
    recorder = MemoryRecorder()
    # /v1/moderations never calls the upstream, so none is running.
    settings = GatewaySettings(upstream=f"http://127.0.0.1:{free_port()}/v1",
                               open=keys is None, rate_limit=0)
    app = create_app(settings, guard=guard, recorder=recorder, keys=keys, states=states)
    return Running(stack.enter_context(serve_app(app)), app, recorder)


@pytest.fixture(scope="session")
def default_gateway() -> Iterator[Running]:
    """A gateway on the shipped defaults: the default policy and the real
    fast classifier. Shared; count its exchanges as differences."""
    with contextlib.ExitStack() as stack:
        yield _serve(stack, Guard())


@pytest.fixture
def serve_gateway() -> Iterator[Callable[..., Running]]:
    """``serve_gateway(guard, keys=None, states=None)`` → a gateway judging
    with that Guard; open to all unless it has keys."""
    with contextlib.ExitStack() as stack:
        yield lambda guard, **auth: _serve(stack, guard, **auth)


@pytest.fixture(scope="session")
def default_guard() -> Guard:
    """guardstack's own Guard on its defaults, loaded once for the session."""
    return Guard()


def _unregister_new_callbacks(before: list[Any]) -> None:
    # litellm copies callbacks into lists of its own on a call, and skips a
    # logger whose class and settings it already holds: leave none behind.
    for callback in list(litellm.callbacks):
        if not any(callback is b for b in before):
            litellm.logging_callback_manager.remove_callback_from_all_lists(callback)


@pytest.fixture
async def use_guardrail() -> AsyncIterator[Callable[..., GuardstackGuardrail]]:
    """``use_guardrail(**settings)`` → a guardrail named ``guardstack``,
    registered in ``litellm.callbacks`` as the proxy's config loader does,
    for this test only (calling it again replaces the previous one)."""
    saved = list(litellm.callbacks)
    made: list[GuardstackGuardrail] = []

    def use(**settings: Any) -> GuardstackGuardrail:
        _unregister_new_callbacks(saved)
        made.append(GuardstackGuardrail(guardrail_name="guardstack", **settings))
        litellm.callbacks = [*saved, made[-1]]
        return made[-1]

    yield use
    _unregister_new_callbacks(saved)
    litellm.callbacks = saved
    for guardrail in made:
        await guardrail.aclose()


@pytest.fixture
def guardrail_in(use_guardrail, default_gateway, default_guard):
    """``guardrail_in(mode, **settings)``: on the shipped defaults, in-process
    (the session's Guard) or remote (the session's default gateway)."""
    def make(mode: str, **settings: Any) -> GuardstackGuardrail:
        if mode == "remote":
            return use_guardrail(api_base=default_gateway.url, **settings)
        return use_guardrail(guard=default_guard, **settings)
    return make


@pytest.fixture
def cat_guardrail_in(use_guardrail, serve_gateway):
    """``cat_guardrail_in(mode, **settings)``: judging with the stand-in that
    calls an answer unsafe once it mentions a cat, in-process or through a
    gateway of its own."""
    def make(mode: str, **settings: Any) -> GuardstackGuardrail:
        if mode == "remote":
            return use_guardrail(api_base=serve_gateway(marker_guard("cat")).url, **settings)
        return use_guardrail(guard=marker_guard("cat", roles=("response",)), **settings)
    return make


@pytest.fixture(autouse=True)
async def close_litellm_clients() -> AsyncIterator[None]:
    """litellm keeps an HTTP client per event loop; each test has its own loop."""
    yield
    await litellm.close_litellm_async_clients()
