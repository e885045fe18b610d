"""``/v1/responses``: OpenAI's Responses API served over the upstream's chat
completions, with every check of the chat path.

The end-to-end tests drive a real llama.cpp server (SmolLM2, which speaks
chat completions only) with the official ``openai`` client's
``responses.create`` and ``responses.stream``. Reasoning, tool calls and a
broken upstream stream come from a scripted server, since SmolLM2 produces
none of them on demand. The model's own words are never asserted.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from tests.fixtures.llama_server import MODEL_ALIAS
from tests.gateway.scripted import (
    REASONING_THEN_TOOL_CALL,
    UNSAFE_REASONING,
    chat_chunk,
    json_reply,
    sse_reply,
    upstream,
)
from tests.gateway.standins import MarkerDetector, marker_guard, policy_yaml

from guardstack.gateway.auth import Identity, StaticKeys
from guardstack.gateway.errors import GatewayError
from guardstack.gateway.responses_api import assistant_messages, to_chat
from guardstack.guard import Guard
from guardstack.verdict import Action

FIXED = {"temperature": 0.0, "max_output_tokens": 48}


# -- the request, translated ------------------------------------------------


def test_a_responses_request_becomes_the_chat_request_it_means():
    chat = to_chat({
        "model": "m", "instructions": "Be brief.", "max_output_tokens": 64, "temperature": 0.2,
        "stream": True, "user": "u1",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Oslo?"},
                                         {"type": "input_image",
                                          "image_url": "data:image/png;base64,AAAA"}]},
            {"type": "function_call", "call_id": "c1", "name": "weather",
             "arguments": '{"city": "Oslo"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "4 degrees"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"role": "user", "content": "Thanks. And tomorrow?"},
            {"role": "developer", "content": "Answer in Celsius."},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "c2", "name": "weather", "arguments": "{}"},
        ],
        "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "weather"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
        "reasoning": {"effort": "low"},
    })
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"},
                                     {"type": "image_url",
                                      "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function",
                         "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "4 degrees"},
        {"role": "user", "content": "Thanks. And tomorrow?"},
        {"role": "developer", "content": "Answer in Celsius."},
        {"role": "assistant", "content": "Checking.",
         "tool_calls": [{"id": "c2", "type": "function",
                         "function": {"name": "weather", "arguments": "{}"}}]},
    ]
    assert chat["max_tokens"] == 64 and chat["temperature"] == 0.2 and chat["stream"] is True
    assert chat["stream_options"] == {"include_usage": True}
    assert chat["user"] == "u1" and chat["reasoning_effort"] == "low"
    assert to_chat({"model": "m", "input": "hi", "top_logprobs": 2})["logprobs"] is True
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "weather", "parameters": {"type": "object"}}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "w", "schema": {"type": "object"}}}


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m", "input": "hi", "previous_response_id": 7}, "previous_response_id"),
    ({"model": "m", "input": "hi", "conversation": "conv_1"}, "conversation"),
    ({"model": "m", "input": "hi", "background": True}, "background"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": []}, "input"),
    ({"model": "m", "input": 7}, "input"),
    ({"model": "m", "input": "hi", "instructions": ["x"]}, "instructions"),
    ({"model": "m", "input": [{"role": "robot", "content": "hi"}]}, "input[0].role"),
    ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file"}]}]},
     "input[0].content[0].type"),
    ({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
])
def test_what_the_bridge_cannot_mean_is_a_400_naming_the_field(body, param):
    with pytest.raises(GatewayError) as err:
        to_chat(body)
    assert err.value.status == 400 and err.value.param == param


# -- a real model server ----------------------------------------------------


@pytest.mark.slow
def test_responses_create_answers_as_the_chat_completion_would(llama_server, run_gateway,
                                                                client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"))
    via = client(gw.url).responses.create(model=MODEL_ALIAS, instructions="Answer briefly.",
                                          input="What do mitochondria do?", **FIXED)
    direct = client(llama_server.removesuffix("/v1")).chat.completions.create(
        model=MODEL_ALIAS, max_tokens=48, temperature=0.0,
        messages=[{"role": "system", "content": "Answer briefly."},
                  {"role": "user", "content": "What do mitochondria do?"}])
    assert via.output_text and via.output_text == direct.choices[0].message.content
    assert via.status in ("completed", "incomplete") and via.id.startswith("resp_")
    assert via.usage is not None and via.usage.output_tokens > 0
    assert via.moderation is not None
    assert via.moderation.input.flagged is False and via.moderation.output.flagged is False
    [ex] = gw.wait_for_exchanges(1)
    assert ex.endpoint == "responses" and ex.status_code == 200
    assert ex.prompt_text == "What do mitochondria do?" and ex.response_text == via.output_text
    assert ex.prompt_verdicts[0].decision is Action.ALLOW


@pytest.mark.slow
def test_a_streamed_response_arrives_as_responses_events(llama_server, run_gateway, client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"), hold_back=4,
                     check_every=4)
    with client(gw.url).responses.stream(model=MODEL_ALIAS, input="Say hello.",
                                         temperature=0.0, max_output_tokens=200) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert events[0].response.moderation.input.flagged is False  # the prompt's, at once
    assert kinds[-1] == "response.completed"
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas.strip() and final.output_text == deltas
    [ex] = gw.wait_for_exchanges(1)
    assert ex.stream and ex.response_text == deltas and not ex.halted


@pytest.mark.slow
def test_a_streamed_response_halts_with_content_filter(llama_server, run_gateway, client):
    """Stand-in detector: an answer is 'unsafe' once it mentions 'cat'."""
    gw = run_gateway(llama_server, guard=marker_guard("cat", roles=("response",)), hold_back=8,
                     check_every=8)
    events = list(client(gw.url).responses.create(
        model=MODEL_ALIAS, input="Write a story about a cat.", stream=True, temperature=0.0,
        max_output_tokens=100))
    [ex] = gw.wait_for_exchanges(1)
    if "cat" not in ex.response_text.lower():
        pytest.fail(f"the model never mentioned a cat; cannot test a halt: {ex.response_text!r}")
    shown = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "cat" not in shown.lower()
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "content_filter"
    assert events[-1].response.moderation.output.flagged is True
    assert ex.halted and ex.finish_reason == "content_filter" and ex.decision == "block"


@pytest.mark.slow
def test_a_blocked_answer_is_withheld_and_a_blocked_prompt_refused(llama_server, run_gateway,
                                                                   client):
    gw = run_gateway(llama_server, guard=marker_guard("cat", roles=("response",)),
                     blocked_message="[withheld]")
    c = client(gw.url)
    reply = c.responses.create(model=MODEL_ALIAS, input="Write a story about a cat.", **FIXED)
    [ex] = gw.wait_for_exchanges(1)
    if "cat" not in ex.response_text.lower():
        pytest.fail(f"the model never mentioned a cat; cannot test a block: {ex.response_text!r}")
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "content_filter"
    assert reply.output_text == "[withheld]"
    gw2 = run_gateway(llama_server, guard=marker_guard("MARKER"))
    with pytest.raises(openai.BadRequestError) as err:
        client(gw2.url).responses.create(model=MODEL_ALIAS, input="MARKER request")
    assert err.value.code == "content_filter"
    [ex2] = gw2.wait_for_exchanges(1)
    assert ex2.endpoint == "responses" and ex2.upstream_ms is None


@pytest.mark.slow
def test_the_last_user_message_is_judged_with_the_conversation(llama_server, run_gateway,
                                                               client):
    detector = MarkerDetector("MARKER-NEVER-SEEN")
    gw = run_gateway(llama_server, guard=Guard(policy_yaml(system_prompt_models=["smollm2*"]),
                                               detector=detector))
    client(gw.url).responses.create(model=MODEL_ALIAS, instructions="Be kind.", input=[
        {"role": "user", "content": "Hi, I am planning a trip."},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Where to?"}]},
        {"role": "user", "content": "To Lisbon in May."}], **FIXED)
    prompt = detector.calls[0]
    assert prompt.role == "prompt" and prompt.text == "To Lisbon in May."
    assert [m.content for m in prompt.context] == ["Be kind.", "Hi, I am planning a trip.",
                                                   "Where to?"]
    [ex] = gw.wait_for_exchanges(1)
    assert ex.system_prompt_added


# -- what a real server will not send on demand -----------------------------


def test_reasoning_and_a_tool_call_become_their_own_output_items(run_gateway, scripted,
                                                                 client):
    up = upstream(scripted, sse_reply(REASONING_THEN_TOOL_CALL))
    gw = run_gateway(up.url, guard=marker_guard("MARKER"))
    with client(gw.url).responses.stream(model="m", input="Weather in Oslo?") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "function_call"]
    reasoning, call = final.output
    assert reasoning.content[0].text == "The user wants the weather."
    assert call.name == "weather" and call.call_id == "call_1"
    assert json.loads(call.arguments) == {"city": "Oslo"}
    assert final.usage.input_tokens == 9 and final.usage.output_tokens == 12
    assert "response.reasoning_text.delta" in kinds
    assert "response.function_call_arguments.done" in kinds


def test_unsafe_reasoning_halts_the_response_before_it_is_shown(run_gateway, scripted):
    up = upstream(scripted, sse_reply(UNSAFE_REASONING))
    gw = run_gateway(up.url, guard=marker_guard("MARKER", roles=("response",)), hold_back=8,
                     check_every=4)
    with httpx.stream("POST", gw.url + "/v1/responses", timeout=30,
                      json={"model": "m", "input": "Plan my week.", "stream": True}) as r:
        assert r.status_code == 200
        lines = list(r.iter_lines())
    names = [line[7:] for line in lines if line.startswith("event: ")]
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert names == [e["type"] for e in events]  # each event is named as OpenAI names it
    assert "MARKER" not in "".join(lines)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "content_filter"}
    [ex] = gw.wait_for_exchanges(1)
    assert ex.halted and ex.unsafe_tokens_released == 0


def test_a_broken_upstream_stream_ends_in_response_failed(run_gateway, scripted):
    body = chat_chunk({"role": "assistant", "content": "Hello"}) + b"data: {not json\n\n"
    up = upstream(scripted, sse_reply(body))
    gw = run_gateway(up.url, guard=marker_guard("MARKER"), hold_back=0)
    with httpx.stream("POST", gw.url + "/v1/responses", timeout=30,
                      json={"model": "m", "input": "Hi", "stream": True}) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["code"] == "upstream_error"
    assert events[-1]["response"]["status"] == "failed"
    [ex] = gw.wait_for_exchanges(1)
    assert ex.error and ex.status_code == 502


def test_bad_requests_get_openai_errors_before_the_upstream_is_called(run_gateway, scripted):
    up = upstream(scripted, sse_reply(b""))
    gw = run_gateway(up.url, guard=marker_guard("MARKER"))
    r = httpx.post(gw.url + "/v1/responses", content=b"\xff\xfe", timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_encoding"
    r = httpx.post(gw.url + "/v1/responses", json={"model": "m", "input": "hi",
                                                   "conversation": "conv_9"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["param"] == "conversation"
    r = httpx.post(gw.url + "/v1/responses", json={"input": "hi"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    exchanges = gw.wait_for_exchanges(3)
    assert all(ex.upstream_ms is None for ex in exchanges)


# -- previous_response_id ----------------------------------------------------


@pytest.mark.slow
def test_a_response_continues_from_the_previous_one(llama_server, run_gateway, client):
    """The second turn sends only its new input; the gateway supplies the
    first turn and its answer, so the model and the prompt check see both."""
    detector = MarkerDetector("MARKER-NEVER-SEEN")
    gw = run_gateway(llama_server, guard=Guard(policy_yaml(), detector=detector))
    c = client(gw.url)
    first = c.responses.create(model=MODEL_ALIAS, instructions="Be brief.",
                               input="My name is Ada.", **FIXED)
    streamed = list(c.responses.create(model=MODEL_ALIAS, input="I like chess.", stream=True,
                                       previous_response_id=first.id, **FIXED))
    second = streamed[-1].response  # a streamed answer is stored too
    assert second.status in ("completed", "incomplete")
    third = c.responses.create(model=MODEL_ALIAS, input="What is my name?",
                               previous_response_id=second.id, **FIXED)
    assert third.output_text
    prompts = [call for call in detector.calls if call.role == "prompt"]
    assert [p.text for p in prompts] == ["My name is Ada.", "I like chess.", "What is my name?"]
    # the first turn's instructions are not carried over; its turns and answers are
    assert [m.content for m in prompts[1].context] == ["My name is Ada.", first.output_text]
    context = [m.content for m in prompts[2].context]
    assert context == ["My name is Ada.", first.output_text, "I like chess.",
                       second.output_text]
    # the store files the chain as one conversation, named by its first response
    assert {ex.conversation_id for ex in gw.wait_for_exchanges(3)} == {first.id}
    named = c.responses.create(model=MODEL_ALIAS, input="Hi.", previous_response_id=third.id,
                               extra_headers={"X-Conversation-Id": "mine"}, **FIXED)
    assert named.output_text and gw.wait_for_exchanges(4)[-1].conversation_id == "mine"


def test_previous_responses_are_the_owners_own_and_bounded(run_gateway, scripted, client):
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "Noted."}}]}
    up = upstream(scripted, json_reply(json.dumps(answer).encode()))
    keys = StaticKeys({"gs-ada": Identity("ada"), "gs-bob": Identity("bob")})
    gw = run_gateway(up.url, guard=marker_guard("MARKER"), keys=keys, open=False,
                     stored_responses=2)

    def post(key: str, **body) -> httpx.Response:
        return httpx.post(gw.url + "/v1/responses", timeout=30, json={"model": "m", **body},
                          headers={"authorization": f"Bearer {key}"})

    ids = [post("gs-ada", input=f"Turn {i}.").json()["id"] for i in range(3)]
    unstored = post("gs-ada", input="Forget me.", store=False).json()["id"]
    assert post("gs-ada", input="Go on.", previous_response_id=ids[2]).status_code == 200
    for key, rid in (("gs-bob", ids[2]),      # someone else's
                     ("gs-ada", ids[0]),      # pushed out (two kept)
                     ("gs-ada", unstored),    # store: false
                     ("gs-ada", "resp_none")):
        r = post(key, input="Go on.", previous_response_id=rid)
        assert r.status_code == 404, (key, rid)
        assert r.json()["error"]["code"] == "previous_response_not_found"
    gw_off = run_gateway(up.url, guard=marker_guard("MARKER"), stored_responses=0)
    r = httpx.post(gw_off.url + "/v1/responses", timeout=30,
                   json={"model": "m", "input": "hi", "previous_response_id": ids[2]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_parameter"


def test_an_answer_continues_as_one_assistant_turn():
    output = [{"type": "reasoning", "id": "rs", "content": [{"type": "reasoning_text",
                                                              "text": "Think."}]},
              {"type": "message", "id": "m", "content": [{"type": "output_text",
                                                          "text": "Checking."}]},
              {"type": "function_call", "id": "f", "call_id": "c1", "name": "clock",
               "arguments": "{}"}]
    assert assistant_messages(output) == [{
        "role": "assistant", "content": "Checking.",
        "tool_calls": [{"id": "c1", "type": "function",
                        "function": {"name": "clock", "arguments": "{}"}}]}]
    assert assistant_messages(output[2:])[0]["content"] is None
    assert assistant_messages(output[:1]) == []
