"""``/v1/messages``: Anthropic's Messages API served over the upstream's chat
completions, with every check of the chat path.

The end-to-end tests drive a real llama.cpp server (SmolLM2, which speaks
chat completions only) with Anthropic's official client, ``messages.create``
and ``messages.stream``. Reasoning, tool calls, upstream errors and a broken
upstream stream come from a scripted server, since SmolLM2 produces none of
them on demand. The model's own words are never asserted.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest
from tests.fixtures.llama_server import MODEL_ALIAS
from tests.gateway.scripted import (
    REASONING_THEN_TOOL_CALL,
    UNSAFE_REASONING,
    chat_chunk,
    sse_reply,
    upstream,
)
from tests.gateway.standins import MarkerDetector, marker_guard, policy_yaml

from guardstack.gateway.anthropic_api import to_chat
from guardstack.gateway.auth import Identity, StaticKeys
from guardstack.gateway.errors import GatewayError
from guardstack.guard import Guard
from guardstack.verdict import Action

# The SDK's newest releases dropped ``temperature`` from their signature; the API still takes it.
GREEDY = {"extra_body": {"temperature": 0.0}}
FIXED = {"max_tokens": 48, **GREEDY}


# -- the request, translated ------------------------------------------------


def test_a_messages_request_becomes_the_chat_request_it_means():
    chat = to_chat({
        "model": "m", "max_tokens": 64, "temperature": 0.2, "top_k": 40, "stream": True,
        "system": [{"type": "text", "text": "Be brief."},
                   {"type": "text", "text": "Answer in Celsius.", "cache_control": {}}],
        "metadata": {"user_id": "u1"}, "stop_sequences": ["END"],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Oslo?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "AAAA"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "s"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "4 degrees"},
                {"type": "text", "text": "And tomorrow?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t2", "name": "weather", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t2", "is_error": True,
                 "content": [{"type": "text", "text": "service down"}]}]},
        ],
        "tools": [{"name": "weather", "description": "Forecast.",
                   "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    })
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief.\nAnswer in Celsius."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"},
                                     {"type": "image_url",
                                      "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": "Checking.",
         "tool_calls": [{"id": "t1", "type": "function",
                         "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "4 degrees"},
        {"role": "user", "content": "And tomorrow?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "t2", "type": "function",
                         "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t2", "content": "Error: service down"},
    ]
    assert chat["max_tokens"] == 64 and chat["temperature"] == 0.2 and chat["top_k"] == 40
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert chat["user"] == "u1" and chat["stop"] == ["END"]
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "weather", "parameters": {"type": "object"}, "description": "Forecast."}}]
    assert chat["tool_choice"] == "required" and chat["parallel_tool_calls"] is False
    assert "thinking" not in chat
    named = to_chat({"model": "m", "max_tokens": 8, "messages": [{"role": "user",
                                                                  "content": "hi"}],
                     "tool_choice": {"type": "tool", "name": "weather"}})
    assert named["tool_choice"] == {"type": "function", "function": {"name": "weather"}}


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
    ({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]},
     "max_tokens"),
    ({"model": "m", "max_tokens": 8}, "messages"),
    ({"model": "m", "max_tokens": 8, "messages": []}, "messages"),
    ({"model": "m", "max_tokens": 8, "messages": [{"role": "system", "content": "hi"}]},
     "messages[0].role"),
    ({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": []}]},
     "messages[0].content"),
    ({"model": "m", "max_tokens": 8, "system": 7, "messages": [{"role": "user",
                                                                "content": "hi"}]}, "system"),
    ({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64"}}]}]}, "messages[0].content[0].type"),
    ({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image"}]}]}]},
     "messages[0].content[0].content[0].type"),
    ({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}],
      "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
    ({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}],
      "mcp_servers": [{"type": "url", "url": "https://example.org"}]}, "mcp_servers"),
    ({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}],
      "tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
])
def test_what_the_bridge_cannot_mean_is_a_400_naming_the_field(body, param):
    with pytest.raises(GatewayError) as err:
        to_chat(body)
    assert err.value.status == 400 and err.value.param == param


# -- a real model server ----------------------------------------------------


@pytest.mark.slow
def test_messages_create_answers_as_the_chat_completion_would(llama_server, run_gateway,
                                                               anthropic_client, client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"))
    via = anthropic_client(gw.url).messages.create(
        model=MODEL_ALIAS, system="Answer briefly.", metadata={"user_id": "ada"},
        messages=[{"role": "user", "content": "What do mitochondria do?"}], **FIXED)
    direct = client(llama_server.removesuffix("/v1")).chat.completions.create(
        model=MODEL_ALIAS, max_tokens=48, temperature=0.0,
        messages=[{"role": "system", "content": "Answer briefly."},
                  {"role": "user", "content": "What do mitochondria do?"}])
    [block] = via.content
    assert block.type == "text" and block.text == direct.choices[0].message.content
    assert via.stop_reason in ("end_turn", "max_tokens") and via.id.startswith("msg_")
    assert via.usage.output_tokens > 0 and via.model == MODEL_ALIAS
    [ex] = gw.wait_for_exchanges(1)
    assert ex.endpoint == "messages" and ex.status_code == 200 and ex.user == "ada"
    assert ex.prompt_text == "What do mitochondria do?" and ex.response_text == block.text
    assert ex.prompt_verdicts[0].decision is Action.ALLOW


@pytest.mark.slow
def test_a_streamed_message_arrives_as_messages_events(llama_server, run_gateway,
                                                       anthropic_client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"), hold_back=4,
                     check_every=4)
    with anthropic_client(gw.url).messages.stream(
            model=MODEL_ALIAS, messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=200, **GREEDY) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "message_delta" in kinds
    deltas = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert deltas.strip() and final.content[0].text == deltas
    assert final.stop_reason in ("end_turn", "max_tokens")
    # llama.cpp's server sends no usage while streaming: the chunks are counted
    pieces = sum(e.type == "content_block_delta" for e in events)
    assert final.usage.output_tokens == pieces > 0
    [ex] = gw.wait_for_exchanges(1)
    assert ex.stream and ex.endpoint == "messages" and ex.response_text == deltas
    assert not ex.halted


@pytest.mark.slow
def test_a_streamed_message_halts_with_a_refusal(llama_server, run_gateway, anthropic_client):
    """Stand-in detector: an answer is 'unsafe' once it mentions 'cat'."""
    gw = run_gateway(llama_server, guard=marker_guard("cat", roles=("response",)), hold_back=8,
                     check_every=8)
    with anthropic_client(gw.url).messages.stream(
            model=MODEL_ALIAS, messages=[{"role": "user", "content": "Write a story about a cat."}],
            max_tokens=100, **GREEDY) as stream:
        events = list(stream)
        final = stream.get_final_message()
    [ex] = gw.wait_for_exchanges(1)
    if "cat" not in ex.response_text.lower():
        pytest.fail(f"the model never mentioned a cat; cannot test a halt: {ex.response_text!r}")
    shown = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert "cat" not in shown.lower()
    assert final.stop_reason == "refusal" and final.stop_details.type == "refusal"
    assert ex.halted and ex.finish_reason == "content_filter" and ex.decision == "block"


@pytest.mark.slow
def test_a_blocked_answer_and_a_blocked_prompt_are_refusals(llama_server, run_gateway,
                                                            anthropic_client):
    gw = run_gateway(llama_server, guard=marker_guard("cat", roles=("response",)),
                     blocked_message="[withheld]")
    reply = anthropic_client(gw.url).messages.create(
        model=MODEL_ALIAS, messages=[{"role": "user", "content": "Write a story about a cat."}],
        **FIXED)
    [ex] = gw.wait_for_exchanges(1)
    if "cat" not in ex.response_text.lower():
        pytest.fail(f"the model never mentioned a cat; cannot test a block: {ex.response_text!r}")
    assert reply.stop_reason == "refusal" and [b.text for b in reply.content] == ["[withheld]"]
    assert reply.stop_details.explanation.startswith("The answer was stopped")
    # a blocked prompt never reaches the model: a refusal, streamed or not
    gw2 = run_gateway(llama_server, guard=marker_guard("MARKER"), blocked_message="[blocked]")
    c = anthropic_client(gw2.url)
    refused = c.messages.create(model=MODEL_ALIAS, max_tokens=16,
                                messages=[{"role": "user", "content": "MARKER request"}])
    assert refused.stop_reason == "refusal" and refused.content[0].text == "[blocked]"
    assert refused.stop_details.explanation.startswith("The request was blocked")
    with c.messages.stream(model=MODEL_ALIAS, max_tokens=16,
                           messages=[{"role": "user", "content": "MARKER again"}]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "refusal" and final.content[0].text == "[blocked]"
    assert final.stop_details.explanation.startswith("The request was blocked")
    exchanges = gw2.wait_for_exchanges(2)
    assert all(e.upstream_ms is None and e.decision == "block" for e in exchanges)
    assert [e.stream for e in exchanges] == [False, True]


@pytest.mark.slow
def test_the_last_user_message_is_judged_with_the_conversation(llama_server, run_gateway,
                                                               anthropic_client):
    detector = MarkerDetector("MARKER-NEVER-SEEN")
    gw = run_gateway(llama_server, guard=Guard(policy_yaml(system_prompt_models=["smollm2*"]),
                                               detector=detector))
    anthropic_client(gw.url).messages.create(model=MODEL_ALIAS, system="Be kind.", messages=[
        {"role": "user", "content": "Hi, I am planning a trip."},
        {"role": "assistant", "content": [{"type": "text", "text": "Where to?"}]},
        {"role": "user", "content": "To Lisbon in May."}], **FIXED)
    prompt = detector.calls[0]
    assert prompt.role == "prompt" and prompt.text == "To Lisbon in May."
    assert [m.content for m in prompt.context] == ["Be kind.", "Hi, I am planning a trip.",
                                                   "Where to?"]
    [ex] = gw.wait_for_exchanges(1)
    assert ex.system_prompt_added


# -- what a real server will not send on demand -----------------------------


def test_reasoning_and_a_tool_call_become_thinking_and_tool_use_blocks(run_gateway, scripted,
                                                                        anthropic_client):
    up = upstream(scripted, sse_reply(REASONING_THEN_TOOL_CALL))
    gw = run_gateway(up.url, guard=marker_guard("MARKER"))
    with anthropic_client(gw.url).messages.stream(
            model="m", max_tokens=64, messages=[{"role": "user", "content": "Weather in Oslo?"}],
            tools=[{"name": "weather", "input_schema": {"type": "object"}}]) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    thinking, call = final.content
    assert thinking.thinking == "The user wants the weather."
    assert call.name == "weather" and call.id == "call_1" and call.input == {"city": "Oslo"}
    assert final.stop_reason == "tool_use"
    assert final.usage.input_tokens == 9 and final.usage.output_tokens == 12
    assert kinds.count("content_block_start") == 2 and kinds.count("content_block_stop") == 2


def test_unsafe_reasoning_halts_the_message_before_it_is_shown(run_gateway, scripted):
    up = upstream(scripted, sse_reply(UNSAFE_REASONING))
    gw = run_gateway(up.url, guard=marker_guard("MARKER", roles=("response",)), hold_back=8,
                     check_every=4)
    with httpx.stream("POST", gw.url + "/v1/messages", timeout=30,
                      json={"model": "m", "max_tokens": 64, "stream": True,
                            "messages": [{"role": "user", "content": "Plan my week."}]}) as r:
        assert r.status_code == 200
        lines = list(r.iter_lines())
    names = [line[7:] for line in lines if line.startswith("event: ")]
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert names == [e["type"] for e in events]  # each event is named as Anthropic names it
    assert "MARKER" not in "".join(lines)
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]
    assert events[-2]["delta"]["stop_reason"] == "refusal"
    starts = [e["index"] for e in events if e["type"] == "content_block_start"]
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert starts == stops  # every block opened is closed, in order
    [ex] = gw.wait_for_exchanges(1)
    assert ex.halted and ex.unsafe_tokens_released == 0


def test_a_broken_upstream_stream_ends_in_an_error_event(run_gateway, scripted,
                                                         anthropic_client):
    body = chat_chunk({"role": "assistant", "content": "Hello"}) + b"data: {not json\n\n"
    up = upstream(scripted, sse_reply(body))
    gw = run_gateway(up.url, guard=marker_guard("MARKER"), hold_back=0)
    with pytest.raises(anthropic.APIStatusError) as err, anthropic_client(gw.url).messages.stream(
            model="m", max_tokens=16, messages=[{"role": "user", "content": "Hi"}]) as stream:
        list(stream)
    assert "stream failed" in str(err.value)
    [ex] = gw.wait_for_exchanges(1)
    assert ex.error and ex.status_code == 502


def test_upstream_and_gateway_errors_come_in_anthropics_envelope(run_gateway, scripted,
                                                                 anthropic_client):
    refused = json.dumps({"error": {"message": "model 'm' not loaded", "type": "bad"}}).encode()
    up = upstream(scripted, b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
                            b"content-length: " + str(len(refused)).encode() + b"\r\n\r\n"
                  + refused)
    keys = StaticKeys({"gs-ada": Identity("ada")})
    gw = run_gateway(up.url, guard=marker_guard("MARKER"), keys=keys, open=False)
    with pytest.raises(anthropic.AuthenticationError):
        anthropic_client(gw.url, api_key="gs-wrong").messages.create(
            model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    c = anthropic_client(gw.url, api_key="gs-ada")  # sent as x-api-key
    with pytest.raises(anthropic.NotFoundError) as err:
        c.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["error"] == {"type": "not_found_error",
                                       "message": "model 'm' not loaded"}
    with pytest.raises(anthropic.BadRequestError) as err:
        c.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}],
                          tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert "not supported" in err.value.body["error"]["message"]
    r = httpx.post(gw.url + "/v1/messages", content=b"\xff\xfe", timeout=10,
                   headers={"x-api-key": "gs-ada"})
    assert r.status_code == 400 and r.json()["type"] == "error"
    # what the gateway does not serve under /v1/messages/ is a 404 in the same envelope
    r = httpx.post(gw.url + "/v1/messages/batches", json={"requests": []}, timeout=10,
                   headers={"x-api-key": "gs-ada"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert "/v1/messages/count_tokens only" in r.json()["error"]["message"]
    exchanges = gw.wait_for_exchanges(4)
    assert [e.user for e in exchanges[1:]] == ["ada"] * 3


@pytest.mark.parametrize("limit", [0, -5])
def test_a_max_tokens_below_one_is_called_a_wrong_value_not_a_wrong_type(limit):
    with pytest.raises(GatewayError) as err:
        to_chat({"model": "m", "max_tokens": limit,
                 "messages": [{"role": "user", "content": "hi"}]})
    assert err.value.code == "invalid_value" and f"got {limit}" in err.value.message
