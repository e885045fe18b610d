"""The streamed output check on LiteLLM's Anthropic route (``/v1/messages``),
whose streams reach a guardrail as raw SSE bytes: a real SmolLM2 stream from
``litellm.anthropic.messages.acreate`` handed to the streaming hook as the
proxy hands it over, and scripted byte streams for what only an Anthropic
upstream passed through sends (frames joined or split across reads, CRLF,
thinking and tool-input deltas). What the client receives is read back by the
official ``anthropic`` client's own stream parser.

As in the other stream tests, the stand-in ``MarkerDetector`` makes an answer
"unsafe" once it mentions a cat.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2  # the anthropic client's HTTP library (a fork of httpx)
import litellm
import pytest
from litellm.types.proxy.auth.user_api_key_auth import UserAPIKeyAuth
from tests.fixtures.llama_server import MODEL_ALIAS
from tests.gateway.standins import marker_guard
from tests.integrations.test_litellm_guardrail_stream import Tap

from guardstack.integrations.anthropic_sse import parse

STORY = [{"role": "user", "content": "Write a story about a cat."}]
EVERYDAY = [{"role": "user", "content": "How do I photograph birds in flight?"}]
FIXED = {"temperature": 0.0, "max_tokens": 100}


def frames_of(raw: bytes) -> list[dict[str, Any]]:
    return [e for f in raw.replace(b"\r\n", b"\n").split(b"\n\n") if (e := parse(f))]


def text_of(raw: bytes, kind: str = "text_delta", field: str = "text") -> str:
    return "".join(e["delta"].get(field, "") for e in frames_of(raw)
                   if e["type"] == "content_block_delta" and e["delta"]["type"] == kind)


def assert_well_formed(raw: bytes) -> None:
    """What a client needs from a Messages stream: one message, each block
    started before its deltas and stopped once, then message_delta, message_stop."""
    events = frames_of(raw)
    kinds = [e["type"] for e in events if e["type"] != "ping"]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    open_: set[int] = set()
    for e in events:
        if e["type"] == "content_block_start":
            assert e["index"] not in open_
            open_.add(e["index"])
        elif e["type"] == "content_block_delta":
            assert e["index"] in open_
        elif e["type"] == "content_block_stop":
            open_.remove(e["index"])
        elif e["type"] == "message_delta":
            assert not open_, "a block left open before message_delta"


async def as_the_client_reads(raw: bytes) -> anthropic.types.Message:
    """The official client's parse of a stream body (its HTTP transport
    replaced by one that answers with these bytes)."""
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as http:
        client = anthropic.AsyncAnthropic(api_key="unused", base_url="http://upstream",
                                          http_client=http)
        async with client.messages.stream(model="m", max_tokens=10,
                                          messages=[{"role": "user", "content": "hi"}]) as s:
            return await s.get_final_message()


async def proxied(guardrail: Any, request: dict[str, Any], upstream: str) -> tuple[bytes, Tap]:
    """What the proxy's client receives for a streamed /v1/messages call."""
    tap = Tap(await litellm.anthropic.messages.acreate(
        model=f"hosted_vllm/{MODEL_ALIAS}", api_base=upstream, api_key="unused", stream=True,
        **request))
    hook = guardrail.async_post_call_streaming_iterator_hook(
        user_api_key_dict=UserAPIKeyAuth(), response=tap, request_data=request)
    return b"".join([chunk async for chunk in hook]), tap


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["in_process", "remote"])
async def test_an_everyday_messages_stream_passes_byte_for_byte(mode, guardrail_in,
                                                               llama_server):
    guardrail = guardrail_in(mode, check_every=8, hold_back=8)
    request = {"messages": EVERYDAY, **FIXED}
    out, tap = await proxied(guardrail, request, llama_server)
    assert out == b"".join(tap.taken)
    assert_well_formed(out)
    message = await as_the_client_reads(out)
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.content[0].text == text_of(out) != ""
    ours = request["metadata"]["guardstack"]
    assert ours["halted"] is False and ours["unsafe_tokens_released"] == 0
    deltas = sum(1 for e in frames_of(out) if e["type"] == "content_block_delta")
    assert len(ours["response"]) >= deltas // 8  # checked at least every 8 tokens
    assert all(v["status"] == "ok" and v["decision"] != "block" for v in ours["response"])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["in_process", "remote"])
async def test_a_messages_stream_halts_as_a_refusal_before_the_unsafe_words(mode, cat_guardrail_in,
                                                                     llama_server):
    guardrail = cat_guardrail_in(mode, hold_back=8, check_every=8)
    request = {"messages": STORY, **FIXED}
    out, tap = await proxied(guardrail, request, llama_server)
    upstream_text = text_of(b"".join(tap.taken))
    if "cat" not in upstream_text.lower():
        pytest.fail(f"the model never mentioned a cat; cannot test a halt: {upstream_text!r}")
    assert "cat" not in text_of(out).lower()
    assert tap.closed  # the model was stopped
    assert_well_formed(out)
    message = await as_the_client_reads(out)
    assert message.stop_reason == "refusal"
    details = frames_of(out)[-2]["delta"]["stop_details"]
    assert details["type"] == "refusal" and details["category"] == "general_harms"
    assert details["explanation"].startswith("The answer was stopped")
    ours = request["metadata"]["guardstack"]
    assert ours["halted"] is True and ours["unsafe_tokens_released"] == 0
    assert ours["response"][-1]["decision"] == "block"


# -- what an Anthropic upstream passed through sends -------------------------


def event(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\r\ndata: {json.dumps({'type': kind, **fields})}\r\n\r\n".encode()


def start() -> list[bytes]:
    return [event("message_start", message={
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1}}), b": keep-alive comment\n\n",
        event("ping")]


def block(index: int, content_block: dict[str, Any], kind: str, field: str,
          pieces: list[str]) -> list[bytes]:
    return [event("content_block_start", index=index, content_block=content_block),
            *(event("content_block_delta", index=index, delta={"type": kind, field: p})
              for p in pieces),
            event("content_block_stop", index=index)]


def end(stop: str = "end_turn") -> list[bytes]:
    return [event("message_delta", delta={"stop_reason": stop, "stop_sequence": None},
                  usage={"output_tokens": 9}), event("message_stop")]


def reads(frames: list[bytes], sizes: tuple[int, ...] = (7, 90, 3, 200)) -> AsyncIterator[bytes]:
    """The frames as transport reads of varying sizes: frames split and joined."""
    raw = b"".join(frames)

    async def gen() -> AsyncIterator[bytes]:
        at, i = 0, 0
        while at < len(raw):
            size = sizes[i % len(sizes)]
            yield raw[at:at + size]
            at, i = at + size, i + 1
    return gen()


async def guarded(guardrail: Any, chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in guardrail.guard_stream(chunks, {"messages": STORY})])


WORDS = [" Here", " is", " a", " calm", " answer", " about", " birds", " in", " flight", "."]


async def test_split_and_joined_reads_of_a_calm_answer_pass_unchanged(use_guardrail):
    guardrail = use_guardrail(guard=marker_guard("cat", roles=("response",)),
                              hold_back=4, check_every=4)
    frames = [*start(), *block(0, {"type": "text", "text": ""}, "text_delta", "text", WORDS),
              *end()]
    out = await guarded(guardrail, reads(frames))
    assert out == b"".join(frames)
    message = await as_the_client_reads(out)
    assert message.content[0].text == "".join(WORDS) and message.stop_reason == "end_turn"


async def test_unsafe_thinking_halts_with_the_open_block_closed(use_guardrail):
    guardrail = use_guardrail(guard=marker_guard("cat", roles=("response",)),
                              hold_back=4, check_every=4)
    thoughts = [" The", " user", " asks", " about", " a", " cat", " so", " I", " answer."]
    frames = [*start(),
              *block(0, {"type": "thinking", "thinking": "", "signature": ""}, "thinking_delta",
                     "thinking", thoughts),
              *block(1, {"type": "text", "text": ""}, "text_delta", "text", ["Fine."]), *end()]
    out = await guarded(guardrail, reads(frames))
    assert "cat" not in text_of(out, "thinking_delta", "thinking")
    assert text_of(out) == ""
    assert_well_formed(out)
    message = await as_the_client_reads(out)
    assert message.stop_reason == "refusal"
    assert [b.type for b in message.content] == ["thinking"]


async def test_unsafe_tool_input_halts_the_stream(use_guardrail):
    guardrail = use_guardrail(guard=marker_guard("cat", roles=("response",)),
                              hold_back=4, check_every=4)
    tool = {"type": "tool_use", "id": "toolu_1", "name": "note", "input": {}}
    frames = [*start(), *block(0, {"type": "text", "text": ""}, "text_delta", "text",
                               ["I", " will", " write", " it", " down", "."]),
              *block(1, tool, "input_json_delta", "partial_json",
                     ['{"text": "', "a", " cat", " story", '"}']), *end("tool_use")]
    out = await guarded(guardrail, reads(frames))
    assert text_of(out) == "I will write it down."
    assert "cat" not in text_of(out, "input_json_delta", "partial_json")
    assert_well_formed(out)
    assert (await as_the_client_reads(out)).stop_reason == "refusal"


async def test_the_last_words_are_judged_before_the_stop_reason_goes_out(use_guardrail):
    """Fewer words than a check interval: the end of the message triggers the check."""
    guardrail = use_guardrail(guard=marker_guard("cat", roles=("response",)),
                              hold_back=16, check_every=16)
    frames = [*start(), *block(0, {"type": "text", "text": ""}, "text_delta", "text",
                               ["A", " cat", "."]), *end()]
    out = await guarded(guardrail, reads(frames))
    assert "cat" not in text_of(out)
    assert (await as_the_client_reads(out)).stop_reason == "refusal"


async def test_a_stream_cut_mid_frame_keeps_its_last_bytes(use_guardrail):
    guardrail = use_guardrail(guard=marker_guard("cat", roles=("response",)),
                              hold_back=4, check_every=4)
    frames = [*start(), *block(0, {"type": "text", "text": ""}, "text_delta", "text", WORDS)]
    cut = b"".join(frames) + b'event: message_delta\r\ndata: {"type": "mess'
    out = await guarded(guardrail, reads([cut]))
    assert out == cut  # nothing lost, nothing invented: the client sees the cut stream
