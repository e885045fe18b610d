"""The streamed output check: a real SmolLM2 stream from ``litellm.acompletion``
handed to the guardrail's ``async_post_call_streaming_iterator_hook`` the way
the LiteLLM proxy hands it over, then read as the proxy's client would.

As in the gateway's tests, the stand-in ``MarkerDetector`` makes an answer
"unsafe" once it mentions a cat, so each test knows which words must never
reach the client; one test halts on the real classifier (a policy whose
response threshold is 0), and one uses litellm's ``mock_response`` to get a
text-completion stream with the marker on demand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import litellm
import pytest
from litellm.types.proxy.auth.user_api_key_auth import UserAPIKeyAuth
from litellm.types.utils import ModelResponseStream, TextCompletionResponse
from tests.fixtures.llama_server import MODEL_ALIAS
from tests.gateway.standins import marker_guard

STORY = [{"role": "user", "content": "Write a story about a cat."}]
EVERYDAY = [{"role": "user", "content": "How do I photograph birds in flight?"}]
FIXED = {"temperature": 0.0, "seed": 7, "max_tokens": 100}


class Tap:
    """The upstream stream as the hook reads it: what it took, and whether
    it was closed (a halt must stop the model)."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.taken, self.closed = stream, [], False

    def __aiter__(self) -> Tap:
        return self

    async def __anext__(self) -> Any:
        chunk = await self.stream.__anext__()
        self.taken.append(chunk)
        return chunk

    async def aclose(self) -> None:
        self.closed = True
        await self.stream.aclose()


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finish_reasons(chunks: list[Any]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


async def proxied(guardrail: Any, request: dict[str, Any], upstream: str) -> tuple[list, Tap]:
    """What the proxy's client receives for a streamed chat completion."""
    tap = Tap(await litellm.acompletion(model=f"openai/{MODEL_ALIAS}", api_base=upstream,
                                        api_key="unused", stream=True, **request))
    hook = guardrail.async_post_call_streaming_iterator_hook(
        user_api_key_dict=UserAPIKeyAuth(), response=tap, request_data=request)
    return [chunk async for chunk in hook], tap



@pytest.mark.slow
@pytest.mark.parametrize("mode", ["in_process", "remote"])
async def test_everyday_stream_passes_unchanged(mode, guardrail_in, llama_server):
    guardrail = guardrail_in(mode, check_every=8, hold_back=8)
    request = {"messages": EVERYDAY, **FIXED}
    out, tap = await proxied(guardrail, request, llama_server)
    assert out == tap.taken  # every chunk, the same objects, in order
    assert text_of(out) and finish_reasons(out)[-1] in ("stop", "length")
    ours = request["metadata"]["guardstack"]
    assert ours["halted"] is False and ours["unsafe_tokens_released"] == 0
    tokens = sum(1 for c in out if c.choices and c.choices[0].delta.content)
    assert len(ours["response"]) >= tokens // 8  # checked at least every 8 tokens
    assert all(v["status"] == "ok" and v["decision"] != "block" for v in ours["response"])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["in_process", "remote"])
async def test_stream_halts_before_the_unsafe_words_reach_the_client(mode, cat_guardrail_in,
                                                                     llama_server):
    """hold_back >= check_every: nothing unchecked is released, so the client
    never sees the marker, and the stream ends with content_filter."""
    guardrail = cat_guardrail_in(mode, hold_back=8, check_every=8)
    request = {"messages": STORY, **FIXED}
    out, tap = await proxied(guardrail, request, llama_server)
    if "cat" not in text_of(tap.taken).lower():
        pytest.fail(f"the model never mentioned a cat; cannot test a halt: {text_of(tap.taken)!r}")
    assert "cat" not in text_of(out).lower()
    assert finish_reasons(out) == ["content_filter"]
    assert isinstance(out[-1], ModelResponseStream) and out[-1].id == tap.taken[-1].id
    assert tap.closed  # the model was stopped
    ours = request["metadata"]["guardstack"]
    assert ours["halted"] is True and ours["unsafe_tokens_released"] == 0
    assert ours["response"][-1]["decision"] == "block"
    assert ours["response"][-1]["categories"] == ["violent_crime"]


@pytest.mark.slow
async def test_hold_back_zero_streams_at_once_and_counts_what_leaked(use_guardrail,
                                                                     llama_server):
    guardrail = use_guardrail(guard=marker_guard("cat", roles=("response",)),
                              hold_back=0, check_every=6, window_tokens=64)
    request = {"messages": STORY, **FIXED}
    out, tap = await proxied(guardrail, request, llama_server)
    ours = request["metadata"]["guardstack"]
    assert ours["halted"] is True
    # Every token went out as it came until the halting check, up to 6 after the marker.
    released = [c for c in out if c.choices and c.choices[0].delta.content]
    assert out[:-1] == tap.taken[:len(out) - 1]
    assert 0 <= ours["unsafe_tokens_released"] <= 6
    assert ours["unsafe_tokens_released"] <= len(released)
    assert finish_reasons(out) == ["content_filter"]


@pytest.mark.slow
async def test_real_classifier_halts_under_a_zero_threshold_policy(use_guardrail, tmp_path: Path,
                                                                   llama_server):
    """The real shipped classifier, in-process from a policy file: any score
    blocks a response, so the first check halts and, held back, no text at
    all reaches the client."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("response:\n  default: {threshold: 0.0, action: block}\n"
                      "  categories:\n    harm: {threshold: 0.0, action: block}\n")
    guardrail = use_guardrail(policy=str(policy), hold_back=8, check_every=8)
    request = {"messages": EVERYDAY, **FIXED}
    out, tap = await proxied(guardrail, request, llama_server)
    assert text_of(out) == "" and finish_reasons(out) == ["content_filter"]
    assert text_of(tap.taken)  # the model did write something
    [verdict] = request["metadata"]["guardstack"]["response"]
    assert verdict["detector"] == "fast" and verdict["status"] == "ok"
    assert verdict["decision"] == "block"


@pytest.mark.slow
@pytest.mark.parametrize("on_error", ["open", "closed"])
async def test_unreachable_gateway_mid_stream_fails_open_or_closed(on_error, use_guardrail,
                                                                   dead_url, llama_server):
    guardrail = use_guardrail(api_base=dead_url, on_error=on_error, hold_back=8, check_every=8)
    request = {"messages": EVERYDAY, **{**FIXED, "max_tokens": 24}}
    out, tap = await proxied(guardrail, request, llama_server)
    verdicts = request["metadata"]["guardstack"]["response"]
    assert verdicts and all(v["status"] == "error" for v in verdicts)
    assert "unreachable" in verdicts[0]["reason"]
    if on_error == "open":
        assert out == tap.taken
    else:
        assert text_of(out) == "" and finish_reasons(out) == ["content_filter"]


async def test_text_completion_stream_halts_with_a_text_completion_chunk(use_guardrail):
    guardrail = use_guardrail(guard=marker_guard("cat", roles=("response",)),
                              hold_back=4, check_every=4)
    request = {"prompt": "Tell me about your pets.", "stream": True}
    stream = await litellm.atext_completion(
        model="openai/any", api_key="unused", prompt=request["prompt"], stream=True,
        mock_response="I have a dog. I also have a cat who sleeps all day.")
    out = [c async for c in guardrail.guard_stream(stream, request)]
    shown = "".join(c.choices[0].text or "" for c in out)
    assert shown and "I have a dog. I also have a cat".startswith(shown)
    assert "cat" not in shown
    assert isinstance(out[-1], TextCompletionResponse)
    assert out[-1].choices[0].finish_reason == "content_filter"


def reasoning_stream(*deltas: dict[str, Any]) -> Any:
    """A reasoning model's stream as litellm yields it (SmolLM2 has none)."""
    from litellm.types.utils import Delta, StreamingChoices

    chunks = [ModelResponseStream(id="c1", model="m", choices=[
        StreamingChoices(index=0, delta=Delta(**d))]) for d in deltas]
    chunks.append(ModelResponseStream(id="c1", model="m", choices=[
        StreamingChoices(index=0, delta=Delta(), finish_reason="stop")]))

    async def gen() -> Any:
        for c in chunks:
            yield c
    return gen()


async def test_unsafe_reasoning_halts_before_it_reaches_the_client(use_guardrail):
    guardrail = use_guardrail(guard=marker_guard("cat", roles=("response",)),
                              hold_back=4, check_every=4)
    words = [" The", " user", " asks", " about", " a", " cat", " so", " I", " answer."]
    stream = reasoning_stream(*({"reasoning_content": w} for w in words),
                              {"content": "Here it is."})
    out = [c async for c in guardrail.guard_stream(stream, {"messages": STORY})]
    shown = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or ""
                    for c in out if c.choices)
    assert "cat" not in shown and text_of(out) == ""
    assert finish_reasons(out) == ["content_filter"]


async def test_unsafe_tool_arguments_halt_the_stream(use_guardrail):
    guardrail = use_guardrail(guard=marker_guard("cat", roles=("response",)),
                              hold_back=4, check_every=4)
    first = {"index": 0, "id": "call_1", "type": "function",
             "function": {"name": "note", "arguments": ""}}
    fragments = ['{"text": "', "a", " cat", " story", '"}']
    stream = reasoning_stream({"tool_calls": [first]}, *(
        {"tool_calls": [{"index": 0, "function": {"arguments": f}}]} for f in fragments))
    out = [c async for c in guardrail.guard_stream(stream, {"messages": STORY})]
    args = "".join(tc.function.arguments or "" for c in out if c.choices
                   for tc in c.choices[0].delta.tool_calls or ())
    assert "cat" not in args
    assert finish_reasons(out) == ["content_filter"]
