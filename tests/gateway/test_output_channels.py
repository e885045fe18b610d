"""Reasoning and tool-call arguments are part of the answer the output check
judges. Reasoning models (gpt-oss, Qwen3, DeepSeek-R1 under vLLM, llama.cpp
or Ollama) stream their chain of thought as ``reasoning_content`` and clients
show it; a tool call carries text in its arguments. SmolLM2 produces
neither, so the upstream here is a scripted server sending the fields as
vLLM does; the stand-in detector marks text containing MARKER unsafe."""

from __future__ import annotations

import json

import httpx
import openai
from tests.gateway.scripted import json_reply, sse_reply, upstream
from tests.gateway.standins import MarkerDetector, policy_yaml

from guardstack.guard import Guard

MSG = [{"role": "user", "content": "Plan my week."}]


def event(delta: dict, finish: str | None = None) -> bytes:
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def stream(*deltas: dict) -> bytes:
    body = event({"role": "assistant", "content": ""})
    body += b"".join(event(d) for d in deltas)
    return sse_reply(body + event({}, "stop") + b"data: [DONE]\n\n")


def reasoning(*words: str) -> list[dict]:
    return [{"reasoning_content": w} for w in words]


def tool_args(*fragments: str) -> list[dict]:
    first = {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                             "function": {"name": "note", "arguments": ""}}]}
    return [first, *({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}
                     for f in fragments)]


def served(run_gateway, scripted, reply: bytes, **settings):
    detector = MarkerDetector("MARKER")
    up = upstream(scripted, reply)
    gw = run_gateway(up.url, guard=Guard(policy_yaml(), detector=detector), **settings)
    return gw, detector


def raw_events(url: str) -> list[str]:
    with httpx.stream("POST", url + "/v1/chat/completions", timeout=30,
                      json={"model": "m", "messages": MSG, "stream": True}) as r:
        assert r.status_code == 200
        return [line[6:] for line in r.iter_lines() if line.startswith("data: ")]


def finish_reasons(events: list[str]) -> list[str]:
    return [c["finish_reason"] for e in events if e != "[DONE]"
            for c in json.loads(e)["choices"] if c["finish_reason"]]


def test_unsafe_reasoning_halts_the_stream_before_it_is_shown(run_gateway, scripted):
    words = [" The", " user", " asks.", " MARKER", " follows", " here."]
    gw, _ = served(run_gateway, scripted,
                   stream(*reasoning(*words), {"content": "Fine."}), hold_back=8, check_every=4)
    events = raw_events(gw.url)
    assert "MARKER" not in "".join(events)
    assert finish_reasons(events) == ["content_filter"]
    [ex] = gw.wait_for_exchanges(1)
    assert ex.halted and ex.unsafe_tokens_released == 0


def test_unsafe_tool_arguments_halt_the_stream(run_gateway, scripted):
    gw, _ = served(run_gateway, scripted,
                   stream(*tool_args('{"text": "', "a", " MARKER", " b", '"}')),
                   hold_back=8, check_every=4)
    events = raw_events(gw.url)
    assert "MARKER" not in "".join(events)
    assert finish_reasons(events) == ["content_filter"]


def test_clean_channels_pass_intact_and_are_judged_as_one_answer(run_gateway, scripted):
    deltas = [*reasoning("Short", " week."), {"content": "Monday:"}, {"content": " rest."}]
    gw, detector = served(run_gateway, scripted, stream(*deltas), hold_back=8, check_every=4)
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0) as c:
        chunks = list(c.chat.completions.create(model="m", messages=MSG, stream=True))
    shown = [ch.choices[0].delta for ch in chunks if ch.choices]
    assert "".join(d.content or "" for d in shown) == "Monday: rest."
    assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in shown) == \
        "Short week."
    assert chunks[-1].choices[0].finish_reason == "stop"
    judged = [s.text for s in detector.calls if s.role == "response"]
    assert judged[-1] == "Short week.\n\nMonday: rest."
    [ex] = gw.wait_for_exchanges(1)
    assert ex.response_text == "Short week.\n\nMonday: rest." and not ex.halted


def test_clean_tool_call_streams_through(run_gateway, scripted):
    gw, _ = served(run_gateway, scripted, stream(*tool_args('{"text": ', '"buy milk"}')))
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0) as c:
        chunks = list(c.chat.completions.create(model="m", messages=MSG, stream=True))
    args = "".join(tc.function.arguments or "" for ch in chunks if ch.choices
                   for tc in ch.choices[0].delta.tool_calls or ())
    assert json.loads(args) == {"text": "buy milk"}


def completion(message: dict) -> bytes:
    return json_reply(json.dumps({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message},
                     "finish_reason": "stop"}]}).encode())


def test_non_streamed_unsafe_reasoning_is_withheld_with_the_answer(run_gateway, scripted):
    message = {"content": "Fine.", "reasoning_content": "Thinking about MARKER.",
               "tool_calls": [{"id": "call_1", "type": "function",
                               "function": {"name": "note", "arguments": "{}"}}]}
    gw, _ = served(run_gateway, scripted, completion(message), blocked_message="[withheld]")
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": MSG})
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] == "[withheld]"
    assert "MARKER" not in r.text
    assert "reasoning_content" not in choice["message"] and "tool_calls" not in choice["message"]


def test_non_streamed_clean_answer_keeps_every_channel(run_gateway, scripted):
    message = {"content": "Done.", "reasoning": "Easy.",
               "tool_calls": [{"id": "call_1", "type": "function",
                               "function": {"name": "note", "arguments": '{"a": 1}'}}]}
    gw, detector = served(run_gateway, scripted, completion(message))
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": MSG})
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["reasoning"] == "Easy."
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'
    judged = [s.text for s in detector.calls if s.role == "response"]
    assert judged == ['Easy.\n\nDone.\n\n{"a": 1}']
