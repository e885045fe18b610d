"""Ollama's native API (``/api/chat``, ``/api/generate``, ...) served by the
gateway over the upstream's OpenAI API, with every check of the chat path.

The end-to-end tests drive a real llama.cpp server (SmolLM2) with the
official ``ollama`` Python client. Reasoning, tool calls, a broken stream and
a hung-up client come from a scripted server, since SmolLM2 produces none of
them on demand. The model's own words are never asserted.
"""

from __future__ import annotations

import base64
import json

import httpx
import ollama
import pytest
from tests.fixtures.llama_server import MODEL_ALIAS, free_port
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
from guardstack.gateway.ollama_api import chat_request, generate_request, raw_completion_request
from guardstack.guard import Guard
from guardstack.verdict import Action

FIXED = {"temperature": 0.0, "num_predict": 48}
#: A scripted upstream's whole answer.
HELLO = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
         "choices": [{"index": 0, "finish_reason": "stop",
                      "message": {"role": "assistant", "content": "Hello."}}]}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 8).decode()


# -- the request, translated ------------------------------------------------


def test_an_ollama_chat_request_becomes_the_chat_completion_it_means():
    chat = chat_request({
        "model": "llava:7b",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is in this picture?", "images": [PNG]},
            {"role": "assistant", "content": "",
             "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Oslo"}}},
                            {"function": {"name": "time", "arguments": {"tz": "CET"}}}]},
            {"role": "tool", "content": "09:00", "tool_name": "time"},
            {"role": "tool", "content": "4 degrees"},
            {"role": "user", "content": "Thanks."},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}],
        "options": {"temperature": 0.2, "num_predict": 64, "top_k": 20, "repeat_penalty": 1.1,
                    "stop": ["\n\n"], "num_ctx": 8192, "seed": 7},
        "format": {"type": "object"}, "think": "low", "keep_alive": "5m",
    })
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_2_0", "type": "function",
             "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "call_2_1", "type": "function",
             "function": {"name": "time", "arguments": '{"tz": "CET"}'}}]},
        # matched by tool_name, then the one left in order
        {"role": "tool", "content": "09:00", "tool_call_id": "call_2_1"},
        {"role": "tool", "content": "4 degrees", "tool_call_id": "call_2_0"},
        {"role": "user", "content": "Thanks."},
    ]
    assert chat["stream"] is True  # Ollama streams unless told not to
    assert chat["stream_options"] == {"include_usage": True}
    assert (chat["temperature"], chat["max_tokens"], chat["top_k"], chat["seed"]) == (
        0.2, 64, 20, 7)
    assert chat["repeat_penalty"] == chat["repetition_penalty"] == 1.1
    assert chat["stop"] == ["\n\n"] and "num_ctx" not in chat and "keep_alive" not in chat
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "response", "schema": {"type": "object"}}}
    assert chat["reasoning_effort"] == "low"
    assert chat["tools"][0]["function"]["name"] == "weather"
    plain = chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                          "stream": False, "format": "json", "options": {"num_predict": -1}})
    assert plain["response_format"] == {"type": "json_object"}
    assert "max_tokens" not in plain and "stream_options" not in plain


def test_a_generate_request_becomes_a_system_and_a_user_message():
    chat = generate_request({"model": "m", "prompt": "Describe it.", "system": "Be brief.",
                             "images": [PNG], "stream": False})
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "Describe it."},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]
    raw = raw_completion_request({"model": "m", "prompt": "<|im_start|>user\nHi",
                                  "raw": True, "options": {"num_predict": 5}})
    assert raw["prompt"] == "<|im_start|>user\nHi" and raw["max_tokens"] == 5
    assert "messages" not in raw


@pytest.mark.parametrize(("build", "body", "param"), [
    (generate_request, {"model": "m", "prompt": "Go on.", "context": [1, 2, 3]}, "context"),
    (generate_request, {"model": "m", "prompt": "x", "template": "{{ .Prompt }}"}, "template"),
    (generate_request, {"model": "m", "prompt": "def f(", "suffix": "return 1"}, "suffix"),
    (chat_request, {"model": "m", "messages": [], "logprobs": True}, "logprobs"),
    (chat_request, {"messages": []}, "model"),
    (chat_request, {"model": "m", "messages": "hi"}, "messages"),
    (chat_request, {"model": "m", "messages": [{"role": "user", "content": 5}]},
     "messages[0].content"),
    (chat_request, {"model": "m", "messages": [], "options": [1]}, "options"),
    (chat_request, {"model": "m", "messages": [], "options": {"num_predict": "9"}},
     "options.num_predict"),
    (chat_request, {"model": "m", "messages": [], "format": "yaml"}, "format"),
    (chat_request, {"model": "m", "messages": [], "stream": "yes"}, "stream"),
    (chat_request, {"model": "m", "messages": [{"role": "user", "content": "x",
                                                 "images": [b"raw".hex(), 3]}]},
     "messages[0].images[1]"),
    (chat_request, {"model": "m", "messages": [{"role": "user", "content": "x",
                                                 "images": "abc"}]}, "messages[0].images"),
    (raw_completion_request, {"model": "m", "prompt": "x", "raw": True, "images": [PNG]},
     "images"),
])
def test_what_the_bridge_cannot_mean_is_a_400_naming_the_field(build, body, param):
    with pytest.raises(GatewayError) as err:
        build(body)
    assert err.value.status == 400 and err.value.param == param


# -- a real model server, through the official ollama client ----------------


@pytest.mark.slow
def test_chat_answers_as_the_chat_completion_would(llama_server, run_gateway, client,
                                                    ollama_client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"))
    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "What do mitochondria do?"}]
    via = ollama_client(gw.url).chat(model=MODEL_ALIAS, messages=messages,
                                          options=FIXED)
    direct = client(llama_server.removesuffix("/v1")).chat.completions.create(
        model=MODEL_ALIAS, max_tokens=48, temperature=0.0, messages=messages)
    assert via.message.content and via.message.content == direct.choices[0].message.content
    assert via.message.role == "assistant" and via.model == MODEL_ALIAS
    assert via.done and via.done_reason == direct.choices[0].finish_reason
    assert via.eval_count == direct.usage.completion_tokens
    assert via.prompt_eval_count == direct.usage.prompt_tokens
    assert via.total_duration > 0
    [ex] = gw.wait_for_exchanges(1)
    # A whole answer's eval_duration is the model server's time (tokens per second
    # a client shows from it are a true lower bound), not the gateway's last instant.
    assert via.eval_duration == pytest.approx(ex.upstream_ms * 1e6, rel=0.01)
    assert via.eval_duration <= via.total_duration and via.prompt_eval_duration is None
    assert ex.endpoint == "ollama.chat" and ex.status_code == 200 and not ex.stream
    assert ex.prompt_text == "What do mitochondria do?"
    assert ex.response_text == via.message.content
    assert ex.prompt_verdicts[0].decision is Action.ALLOW


@pytest.mark.slow
def test_a_streamed_chat_arrives_as_ollama_lines(llama_server, run_gateway, ollama_client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"), hold_back=4,
                     check_every=4)
    # Every sampling option the bridge translates, so the real server proves it takes them.
    parts = list(ollama_client(gw.url).chat(
        model=MODEL_ALIAS, messages=[{"role": "user", "content": "Say hello."}], stream=True,
        options={"temperature": 0.0, "num_predict": 32, "top_k": 40, "top_p": 0.9,
                 "min_p": 0.05, "typical_p": 1.0, "repeat_penalty": 1.1, "seed": 7,
                 "presence_penalty": 0.0, "frequency_penalty": 0.0, "stop": ["\n\n\n"],
                 "num_ctx": 2048}))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert parts[-1].done_reason in ("stop", "length") and parts[-1].eval_count > 0
    text = "".join(p.message.content for p in parts)
    assert text.strip()
    [ex] = gw.wait_for_exchanges(1)
    assert ex.stream and ex.response_text == text and not ex.halted


@pytest.mark.slow
def test_a_streamed_chat_halts_with_content_filter(llama_server, run_gateway,
                                                   ollama_client):
    """Stand-in detector: an answer is 'unsafe' once it mentions 'cat'."""
    gw = run_gateway(llama_server, guard=marker_guard("cat", roles=("response",)), hold_back=8,
                     check_every=8)
    parts = list(ollama_client(gw.url).chat(
        model=MODEL_ALIAS, messages=[{"role": "user", "content": "Write a story about a cat."}],
        stream=True, options={"temperature": 0.0, "num_predict": 100}))
    [ex] = gw.wait_for_exchanges(1)
    if "cat" not in ex.response_text.lower():
        pytest.fail(f"the model never mentioned a cat; cannot test a halt: {ex.response_text!r}")
    assert "cat" not in "".join(p.message.content for p in parts).lower()
    assert parts[-1].done and parts[-1].done_reason == "content_filter"
    assert ex.halted and ex.finish_reason == "content_filter"


@pytest.mark.slow
def test_a_blocked_answer_is_withheld_and_a_blocked_prompt_raised(llama_server, run_gateway,
                                                                  ollama_client):
    gw = run_gateway(llama_server, guard=marker_guard("cat", roles=("response",)),
                     blocked_message="[withheld]")
    reply = ollama_client(gw.url).generate(model=MODEL_ALIAS,
                                                prompt="Write a story about a cat.",
                                                options=FIXED)
    [ex] = gw.wait_for_exchanges(1)
    if "cat" not in ex.response_text.lower():
        pytest.fail(f"the model never mentioned a cat; cannot test a block: {ex.response_text!r}")
    assert reply.response == "[withheld]" and reply.done_reason == "content_filter"
    gw2 = run_gateway(llama_server, guard=marker_guard("MARKER"))
    c2, asked = ollama_client(gw2.url), [{"role": "user", "content": "MARKER request"}]
    with pytest.raises(ollama.ResponseError) as err:
        c2.chat(model=MODEL_ALIAS, messages=asked)
    assert err.value.status_code == 400 and "blocked" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        list(c2.chat(model=MODEL_ALIAS, messages=asked, stream=True))
    assert err.value.status_code == 400 and "blocked" in err.value.error
    exchanges = gw2.wait_for_exchanges(2)
    assert all(ex.upstream_ms is None for ex in exchanges)


@pytest.mark.slow
def test_generate_takes_the_chat_path_and_raw_prompts_the_completions_path(
        llama_server, run_gateway, ollama_client):
    detector = MarkerDetector("MARKER-NEVER-SEEN")
    gw = run_gateway(llama_server, guard=Guard(policy_yaml(system_prompt_models=["smollm2*"]),
                                               detector=detector))
    c = ollama_client(gw.url)
    answer = c.generate(model=MODEL_ALIAS, prompt="Name a colour.", system="Be brief.",
                        options=FIXED)
    assert answer.response and answer.done
    streamed = list(c.generate(model=MODEL_ALIAS, stream=True, raw=True, options=FIXED,
                               prompt="<|im_start|>user\nName a fruit.<|im_end|>\n"
                                      "<|im_start|>assistant\n"))
    assert streamed[-1].done and "".join(p.response for p in streamed).strip()
    first, second = gw.wait_for_exchanges(2)
    assert first.endpoint == second.endpoint == "ollama.generate"
    assert first.system_prompt_added and not second.system_prompt_added
    assert [m.content for m in detector.calls[0].context] == ["Be brief."]
    assert detector.calls[0].text == "Name a colour."
    raw_prompt = next(s for s in detector.calls if s.role == "prompt" and "fruit" in s.text)
    assert raw_prompt.text.startswith("<|im_start|>user")


@pytest.mark.slow
def test_models_are_listed_and_shown_as_ollama_lists_them(llama_server, run_gateway,
                                                          ollama_client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER"))
    c = ollama_client(gw.url)
    upstream_ids = [m["id"] for m in httpx.get(llama_server + "/models").json()["data"]]
    assert [m.model for m in c.list().models] == upstream_ids
    shown = c.show(MODEL_ALIAS)
    assert shown.capabilities == ["completion"]
    with pytest.raises(ollama.ResponseError) as err:
        c.show("no-such-model:7b")
    assert err.value.status_code == 404 and "no-such-model:7b" in err.value.error
    assert httpx.get(gw.url + "/api/version").json()["version"]
    # Ollama's CLI checks the server with HEAD / before anything else
    assert httpx.head(gw.url + "/").status_code == 200
    assert httpx.get(gw.url + "/").text == "guardstack is running"


@pytest.mark.slow
def test_per_token_embeddings_are_a_clear_error(llama_embedding_server, run_gateway,
                                                ollama_client):
    """llama.cpp's server embeds SmolLM2 (no pooling type) as a vector per
    token; Ollama's clients take one vector per input."""
    gw = run_gateway(llama_embedding_server, guard=marker_guard("MARKER"))
    direct = httpx.post(llama_embedding_server + "/embeddings", timeout=120,
                        json={"model": MODEL_ALIAS, "input": "a document"}).json()
    if not isinstance(direct["data"][0]["embedding"][0], list):
        pytest.fail("the server pooled its embeddings; this test needs per-token ones")
    with pytest.raises(ollama.ResponseError) as err:
        ollama_client(gw.url).embed(model=MODEL_ALIAS, input="a document")
    assert err.value.status_code == 502 and "one embedding per token" in err.value.error


def test_embeddings_are_forwarded_unjudged_as_one_vector_per_input(run_gateway, scripted,
                                                                     ollama_client):
    """A pooling embedding server (vLLM, Ollama, llama-server --pooling),
    scripted: SmolLM2 under llama.cpp embeds per token."""
    vectors = [[0.25, -0.5, 1.0], [0.125, 0.0, -1.0]]
    answer = {"object": "list", "model": "e", "usage": {"prompt_tokens": 7, "total_tokens": 7},
              "data": [{"object": "embedding", "index": 1, "embedding": vectors[1]},
                       {"object": "embedding", "index": 0, "embedding": vectors[0]}]}
    up = upstream(scripted, json_reply(json.dumps(answer).encode()))
    detector = MarkerDetector("MARKER")
    gw = run_gateway(up.url, guard=Guard(policy_yaml(), detector=detector))
    c = ollama_client(gw.url)
    via = c.embed(model="e", input=["MARKER in a document", "a second document"])
    assert [list(v) for v in via.embeddings] == vectors and via.prompt_eval_count == 7
    assert list(c.embeddings(model="e", prompt="MARKER").embedding) == vectors[0]
    assert detector.calls == []
    recorded = gw.wait_for_exchanges(2)
    assert sorted(ex.endpoint for ex in recorded) == ["ollama.embed", "ollama.embeddings"]
    assert all(ex.prompt_text is None and ex.status_code == 200 for ex in recorded)


# -- what a real server will not send on demand -----------------------------


def test_reasoning_streams_as_thinking_and_tool_calls_arrive_whole(run_gateway, scripted,
                                                                   ollama_client):
    up = upstream(scripted, sse_reply(REASONING_THEN_TOOL_CALL))
    gw = run_gateway(up.url, guard=marker_guard("MARKER"))
    parts = list(ollama_client(gw.url).chat(
        model="m", messages=[{"role": "user", "content": "Weather in Oslo?"}], stream=True,
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {}}}]))
    assert "".join(p.message.thinking or "" for p in parts) == "The user wants the weather."
    [call] = [c for p in parts for c in p.message.tool_calls or ()]
    assert call.function.name == "weather" and call.function.arguments == {"city": "Oslo"}
    last = parts[-1]
    assert last.done and last.done_reason == "stop"
    assert (last.prompt_eval_count, last.eval_count) == (9, 12)


def test_unsafe_reasoning_halts_before_it_is_shown(run_gateway, scripted):
    up = upstream(scripted, sse_reply(UNSAFE_REASONING))
    gw = run_gateway(up.url, guard=marker_guard("MARKER", roles=("response",)), hold_back=8,
                     check_every=4)
    with httpx.stream("POST", gw.url + "/api/chat", timeout=30,
                      json={"model": "m", "messages": [{"role": "user", "content": "Hi"}]}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert "MARKER" not in json.dumps(lines)
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "content_filter"
    [ex] = gw.wait_for_exchanges(1)
    assert ex.halted and ex.unsafe_tokens_released == 0


def test_a_broken_upstream_stream_raises_in_the_client(run_gateway, scripted, ollama_client):
    body = chat_chunk({"role": "assistant", "content": "Hello"}) + b"data: {not json\n\n"
    up = upstream(scripted, sse_reply(body))
    gw = run_gateway(up.url, guard=marker_guard("MARKER"), hold_back=0)
    with pytest.raises(ollama.ResponseError) as err:
        list(ollama_client(gw.url).chat(
            model="m", messages=[{"role": "user", "content": "Hi"}], stream=True))
    assert "stream failed" in err.value.error
    [ex] = gw.wait_for_exchanges(1)
    assert ex.error and ex.status_code == 502


def test_an_upstream_error_reaches_the_client_in_ollamas_shape(run_gateway, scripted):
    error = json.dumps({"error": {"message": "model 'nope' not found", "type": "not_found",
                                  "code": None}}).encode()
    reply = (b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: "
             + str(len(error)).encode() + b"\r\n\r\n" + error)
    up = upstream(scripted, reply)
    gw = run_gateway(up.url, guard=marker_guard("MARKER"))
    for stream in (False, True):
        r = httpx.post(gw.url + "/api/chat", timeout=30, json={
            "model": "nope", "stream": stream, "messages": [{"role": "user", "content": "Hi"}]})
        assert r.status_code == 404 and r.json() == {"error": "model 'nope' not found"}


def test_bad_requests_get_ollama_errors_before_the_upstream_is_called(run_gateway, scripted):
    up = upstream(scripted, json_reply(b"{}"))
    gw = run_gateway(up.url, guard=marker_guard("MARKER"))
    r = httpx.post(gw.url + "/api/chat", content=b"\xff\xfe", timeout=10)
    assert r.status_code == 400 and "UTF-8" in r.json()["error"]
    r = httpx.post(gw.url + "/api/generate", content=b"{not json", timeout=10)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = httpx.post(gw.url + "/api/generate", timeout=10,
                   json={"model": "m", "prompt": "Go on.", "context": [1, 2]})
    assert r.status_code == 400 and r.json()["code"] == "unsupported_parameter"
    r = httpx.post(gw.url + "/api/pull", json={"model": "m"}, timeout=10)
    assert r.status_code == 404 and "pull" in r.json()["error"]
    assert isinstance(r.json()["error"], str)  # what ollama.ResponseError reads
    # a request with nothing to answer loads the model: answered at once
    loaded = httpx.post(gw.url + "/api/generate", json={"model": "m"}, timeout=10).json()
    assert loaded["done"] is True and loaded["done_reason"] == "load"
    exchanges = gw.wait_for_exchanges(4)
    assert all(ex.upstream_ms is None for ex in exchanges)


def test_keys_are_required_and_read_as_ollama_clients_send_them(run_gateway, scripted,
                                                                 ollama_client):
    up = upstream(scripted, json_reply(json.dumps(HELLO).encode()))
    keys = StaticKeys({"sk-ollama": Identity(user="u1", key_id="k1")})
    gw = run_gateway(up.url, guard=marker_guard("MARKER"), keys=keys, open=False)
    with pytest.raises(ollama.ResponseError) as err:
        ollama_client(gw.url).chat(model="m", messages=[{"role": "user", "content": "Hi"}])
    assert err.value.status_code == 401
    reply = ollama_client(gw.url, headers={"Authorization": "Bearer sk-ollama"}).chat(
        model="m", messages=[{"role": "user", "content": "Hi"}])
    assert reply.message.content == "Hello." and reply.done_reason == "stop"
    recorded = gw.wait_for_exchanges(2)
    assert recorded[-1].user == "u1"


def test_open_webui_names_the_user_and_the_chat_in_headers(run_gateway, scripted,
                                                           ollama_client):
    up = upstream(scripted, json_reply(json.dumps(HELLO).encode()))
    gw = run_gateway(up.url, guard=marker_guard("MARKER"))
    ollama_client(gw.url, headers={"X-OpenWebUI-User-Id": "0f1e-user",
                                   "X-OpenWebUI-Chat-Id": "chat-42"}).chat(
        model="m", messages=[{"role": "user", "content": "Hi"}])
    [ex] = gw.wait_for_exchanges(1)
    assert (ex.user, ex.conversation_id) == ("0f1e-user", "chat-42")


def test_client_disconnect_from_an_ollama_stream_closes_the_upstream(run_gateway, scripted):
    first = b"".join(chat_chunk({"content": f" w{i}"}) for i in range(4))
    body = hex(len(first))[2:].encode() + b"\r\n" + first + b"\r\n"
    up = upstream(scripted, sse_reply(body, chunked=True), hang=True)
    gw = run_gateway(up.url, guard=marker_guard("x"), hold_back=0, upstream_timeout=60)
    with httpx.stream("POST", gw.url + "/api/chat", timeout=30, json={
            "model": "m", "messages": [{"role": "user", "content": "Hi"}]}) as r:
        for line in r.iter_lines():
            if line.strip():
                break
    assert up.peer_closed.wait(10), "gateway kept the upstream stream open"
    [ex] = gw.wait_for_exchanges(1)
    assert ex.endpoint == "ollama.chat" and ex.client_disconnected and ex.tokens_streamed >= 1


def test_faults_reach_ollama_clients_in_ollamas_shape(run_gateway, scripted, ollama_client):
    """An oversized body, a silent upstream, a stalled stream and an
    unreachable one: each a clear {"error"} the ollama client raises."""
    silent = upstream(scripted, b"", hang=True)
    gw = run_gateway(silent.url, guard=marker_guard("x"), upstream_timeout=0.5,
                     max_body_bytes=2048)
    asked = [{"role": "user", "content": "Hi"}]
    r = httpx.post(gw.url + "/api/chat", json={"model": "m", "messages": [
        {"role": "user", "content": "x" * 4096}]}, timeout=10)
    assert r.status_code == 413 and "larger than the limit" in r.json()["error"]
    with pytest.raises(ollama.ResponseError) as err:
        ollama_client(gw.url).chat(model="m", messages=asked)
    assert err.value.status_code == 504
    first = chat_chunk({"content": "Once"})
    stalled = upstream(scripted, sse_reply(hex(len(first))[2:].encode() + b"\r\n" + first
                                           + b"\r\n", chunked=True), hang=True)
    gw2 = run_gateway(stalled.url, guard=marker_guard("x"), upstream_timeout=0.5, hold_back=0)
    with pytest.raises(ollama.ResponseError) as err:
        list(ollama_client(gw2.url).chat(model="m", messages=asked, stream=True))
    assert "timed out" in err.value.error
    gw3 = run_gateway(f"http://127.0.0.1:{free_port()}/v1", guard=marker_guard("x"))
    with pytest.raises(ollama.ResponseError) as err:
        ollama_client(gw3.url).generate(model="m", prompt="Hi")
    assert err.value.status_code == 502
