"""The gateway in front of a real llama.cpp server (SmolLM2-135M-Instruct),
driven by the official ``openai`` client, streamed and not.

Which verdicts are deterministic: tests that need a given text to be
"unsafe" use the stand-in ``MarkerDetector`` (conftest) so they do not
depend on any model's scores; the model's output itself is generated at run
time and never asserted word for word.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest
from tests.fixtures.llama_server import MODEL_ALIAS
from tests.gateway.scripted import upstream
from tests.gateway.serving import read_chat_stream
from tests.gateway.standins import MarkerDetector, marker_guard, policy_yaml

from guardstack.guard import Guard
from guardstack.verdict import Action

pytestmark = pytest.mark.slow

STORY = [{"role": "user", "content": "Write a story about a cat."}]
FIXED = {"temperature": 0.0, "seed": 7, "max_tokens": 48}


def test_chat_completion_passes_through(llama_server, run_gateway, client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"))
    reply = client(gw.url).chat.completions.create(model=MODEL_ALIAS, messages=STORY, **FIXED)
    text = reply.choices[0].message.content
    assert text and text.strip()
    assert reply.choices[0].finish_reason in ("stop", "length")
    [ex] = gw.wait_for_exchanges(1)
    assert ex.endpoint == "chat.completions" and ex.status_code == 200
    assert ex.prompt_text == "Write a story about a cat."
    assert ex.response_text == text
    assert ex.prompt_verdicts[0].decision is Action.ALLOW
    assert ex.response_verdicts[0].decision is Action.ALLOW
    assert ex.prompt_embeddings[0] is not None and ex.response_embedding is not None
    assert ex.upstream_ms and ex.upstream_ms > 0


def test_same_output_as_direct_upstream(llama_server, run_gateway, client):
    """Greedy decoding: what the gateway returns is what the model said."""
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"))
    direct = client(llama_server.removesuffix("/v1")).chat.completions.create(
        model=MODEL_ALIAS, messages=STORY, **FIXED)
    via = client(gw.url).chat.completions.create(model=MODEL_ALIAS, messages=STORY, **FIXED)
    assert via.choices[0].message.content == direct.choices[0].message.content


def test_streamed_chat_reassembles_to_the_full_answer(llama_server, run_gateway, client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"), hold_back=4,
                     check_every=4)
    stream = client(gw.url).chat.completions.create(model=MODEL_ALIAS, messages=STORY,
                                                    stream=True, **FIXED)
    parts, finish = [], None
    for chunk in stream:
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    text = "".join(parts)
    assert text.strip()
    assert finish in ("stop", "length")
    [ex] = gw.wait_for_exchanges(1)
    assert ex.stream and ex.response_text == text
    assert ex.tokens_streamed > 0 and not ex.halted
    # Checked at least every 4 tokens.
    assert len(ex.response_verdicts) >= ex.tokens_streamed // 4
    assert ex.ttft_ms is not None and ex.ttft_ms > 0


def test_blocked_prompt_is_a_400_content_filter_error(llama_server, run_gateway, client):
    gw = run_gateway(llama_server, guard=marker_guard("cat", roles=("prompt",)))
    with pytest.raises(openai.BadRequestError) as err:
        client(gw.url).chat.completions.create(model=MODEL_ALIAS, messages=STORY, **FIXED)
    assert err.value.status_code == 400
    body = err.value.body
    assert body["code"] == "content_filter" and body["param"] == "prompt"
    assert body["type"] == "invalid_request_error"
    result = body["innererror"]["content_filter_result"]
    assert body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert result["violent_crime"]["filtered"] is True
    # the overall score the category is attributed under blocked too
    assert result["harm"]["filtered"] is True and result["harm"]["severity"] == "high"
    [ex] = gw.wait_for_exchanges(1)
    assert ex.status_code == 400 and ex.decision == "block" and ex.upstream_ms is None


def test_stream_halts_and_no_unchecked_text_reaches_the_client(llama_server, run_gateway,
                                                                client):
    """Stand-in detector: a response is 'unsafe' once it mentions 'cat'. With
    hold_back >= check_every nothing unchecked is released, so the client
    never sees the marker, and the stream ends with content_filter."""
    guard = marker_guard("cat", roles=("response",))
    gw = run_gateway(llama_server, guard=guard, hold_back=8, check_every=8)
    stream = client(gw.url).chat.completions.create(
        model=MODEL_ALIAS, messages=STORY, stream=True, temperature=0.0, seed=7, max_tokens=100)
    shown, finishes = read_chat_stream(stream)
    [ex] = gw.wait_for_exchanges(1)
    if "cat" not in ex.response_text.lower():
        pytest.fail(f"the model never mentioned a cat; cannot test a halt: {ex.response_text!r}")
    assert finishes == ["content_filter"]
    assert "cat" not in shown.lower()
    assert ex.halted and ex.finish_reason == "content_filter"
    assert ex.unsafe_tokens_released == 0
    assert ex.decision == "block"
    text = httpx.get(gw.url + "/metrics").text
    assert "guardstack_stream_halts_total 1.0" in text


def test_hold_back_zero_counts_unsafe_tokens_that_reached_the_client(llama_server, run_gateway,
                                                                     client):
    """Stand-in detector as above; with hold_back=0 tokens go out unchecked,
    so some text precedes the halt and the exchange counts it."""
    gw = run_gateway(llama_server, guard=marker_guard("cat", roles=("response",)),
                     hold_back=0, check_every=6)
    stream = client(gw.url).chat.completions.create(
        model=MODEL_ALIAS, messages=STORY, stream=True, temperature=0.0, seed=7, max_tokens=100)
    released = sum(1 for chunk in stream for c in chunk.choices if c.delta.content)
    [ex] = gw.wait_for_exchanges(1)
    assert ex.halted
    assert 0 <= ex.unsafe_tokens_released <= 6
    assert ex.tokens_streamed == released


def test_non_streamed_blocked_response_is_withheld(llama_server, run_gateway, client):
    """Stand-in detector flags responses mentioning 'cat': the completion comes
    back as 200 with finish_reason content_filter and its text withheld."""
    gw = run_gateway(llama_server, guard=marker_guard("cat", roles=("response",)),
                     blocked_message="[withheld]")
    reply = client(gw.url).chat.completions.create(
        model=MODEL_ALIAS, messages=STORY, temperature=0.0, seed=7, max_tokens=64)
    [ex] = gw.wait_for_exchanges(1)
    if "cat" not in ex.response_text.lower():
        pytest.fail(f"the model never mentioned a cat: {ex.response_text!r}")
    assert reply.choices[0].finish_reason == "content_filter"
    assert reply.choices[0].message.content == "[withheld]"
    assert ex.decision == "block" and ex.finish_reason == "content_filter"


def test_safety_system_prompt_is_added_for_matching_models(llama_server, run_gateway,
                                                           client):
    detector = MarkerDetector("MARKER-NEVER-SEEN")
    guard = Guard(policy_yaml(system_prompt_models=["smollm2*"]), detector=detector)
    gw = run_gateway(llama_server, guard=guard)
    client(gw.url).chat.completions.create(model=MODEL_ALIAS, messages=STORY, **FIXED)
    [ex] = gw.wait_for_exchanges(1)
    assert ex.system_prompt_added
    # The prompt check judges the user's own conversation, not our added prompt.
    assert all("GUARDSTACK-SAFETY-PROMPT" not in m.content for m in detector.calls[0].context)


def test_completions_endpoint_streamed_and_not(llama_server, run_gateway, client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"))
    c = client(gw.url)
    reply = c.completions.create(model=MODEL_ALIAS, prompt="Once upon a time", **FIXED)
    assert reply.choices[0].text
    streamed = "".join(ch.choices[0].text for ch in c.completions.create(
        model=MODEL_ALIAS, prompt="Once upon a time", stream=True, **FIXED) if ch.choices)
    assert streamed.strip()
    exchanges = gw.wait_for_exchanges(2)
    assert [e.endpoint for e in exchanges] == ["completions", "completions"]


def test_models_are_proxied(llama_server, run_gateway, client):
    gw = run_gateway(llama_server, guard=marker_guard("x"))
    ids = [m.id for m in client(gw.url).models.list()]
    assert MODEL_ALIAS in ids


def test_one_model_is_retrieved_from_a_server_that_serves_only_the_list(
        llama_server, run_gateway, client, scripted):
    """llama.cpp answers GET /models/{id} with 404; the gateway finds the
    entry in the list, as OpenAI's models.retrieve expects it."""
    assert httpx.get(f"{llama_server}/models/{MODEL_ALIAS}", timeout=10).status_code >= 400
    gw = run_gateway(llama_server, guard=marker_guard("x"))
    listed = {m.id: m for m in client(gw.url).models.list()}
    retrieved = client(gw.url).models.retrieve(MODEL_ALIAS)
    assert retrieved == listed[MODEL_ALIAS]
    with pytest.raises(openai.NotFoundError) as err:
        client(gw.url).models.retrieve("no-such-model")
    assert err.value.code == "model_not_found" and "no-such-model" in err.value.message
    # a server that serves the path (Ollama's OpenAI API) answers itself, names with '/' too
    ollama = {"id": "library/llama3:8b", "object": "model", "created": 1, "owned_by": "library"}
    body = json.dumps(ollama).encode()
    up = upstream(scripted, b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    gw2 = run_gateway(up.url, guard=marker_guard("x"))
    assert client(gw2.url).models.retrieve("library/llama3:8b").owned_by == "library"
    assert gw2.wait_for_exchanges(1)[0].model == "library/llama3:8b"


def test_embeddings_are_forwarded_unjudged(llama_embedding_server, run_gateway, client):
    """The upstream's vectors come back as the upstream computed them; the
    detector never sees the input and the exchange keeps none of it."""
    detector = MarkerDetector("MARKER")
    gw = run_gateway(llama_embedding_server, guard=Guard(policy_yaml(), detector=detector))
    texts = ["What do mitochondria do?", "a MARKER text"]
    direct = client(llama_embedding_server.removesuffix("/v1")).embeddings.create(
        model=MODEL_ALIAS, input=texts)
    via = client(gw.url).embeddings.create(model=MODEL_ALIAS, input=texts)
    assert len(via.data) == 2
    assert [d.embedding for d in via.data] == [d.embedding for d in direct.data]
    assert not detector.calls
    [ex] = gw.wait_for_exchanges(1)
    assert (ex.endpoint, ex.status_code, ex.model) == ("embeddings", 200, MODEL_ALIAS)
    assert ex.prompt_text is None and ex.response_text is None and not ex.prompt_verdicts
    assert ex.upstream_ms and ex.upstream_ms > 0


def test_embedding_errors_of_the_upstream_pass_through(llama_server, run_gateway):
    # The plain server is not loaded for embeddings and says so with an error.
    gw = run_gateway(llama_server, guard=marker_guard("x"))
    body = {"model": MODEL_ALIAS, "input": "hello"}
    direct = httpx.post(llama_server + "/embeddings", json=body, timeout=60)
    via = httpx.post(gw.url + "/v1/embeddings", json=body, timeout=60)
    assert direct.status_code >= 400
    assert (via.status_code, via.content) == (direct.status_code, direct.content)
    [ex] = gw.wait_for_exchanges(1)
    assert ex.status_code == direct.status_code and ex.error.startswith("upstream ")


def test_upstream_errors_pass_through_with_status_and_body(llama_server, run_gateway):
    gw = run_gateway(llama_server, guard=marker_guard("x"))
    # a field the gateway leaves to the model server (it checks sampling fields' types)
    bad = {"model": MODEL_ALIAS, "messages": STORY, "logit_bias": "very hot"}
    direct = httpx.post(llama_server + "/chat/completions", json=bad, timeout=30)
    via = httpx.post(gw.url + "/v1/chat/completions", json=bad, timeout=30)
    assert direct.status_code >= 400
    assert (via.status_code, via.content) == (direct.status_code, direct.content)


def test_client_disconnect_cancels_upstream_and_is_recorded(llama_server, run_gateway,
                                                            client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"), hold_back=0)
    body = {"model": MODEL_ALIAS, "messages": STORY, "stream": True, "max_tokens": 1500,
            "temperature": 0.0}
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        seen = 0
        for line in r.iter_lines():
            if line.startswith("data: {"):
                seen += 1
            if seen >= 3:
                break
    [ex] = gw.wait_for_exchanges(1)
    assert ex.client_disconnected
    assert ex.tokens_streamed < 1500
    # The upstream is free again: a fresh request is served promptly.
    start = time.monotonic()
    client(gw.url).chat.completions.create(model=MODEL_ALIAS, messages=STORY, max_tokens=4)
    assert time.monotonic() - start < 120  # vs. minutes for the abandoned 1500 tokens


def test_real_default_guard_end_to_end(llama_server, run_gateway, client):
    """The real default detector (FastClassifier) in the path. The policy's
    response threshold is 0, so any score blocks: the test does not depend on
    what the model scores, only that the real classifier ran and the halt
    reached the client."""
    guard = Guard(policy_yaml(prompt_threshold=1.0, response_threshold=0.0))
    gw = run_gateway(llama_server, guard=guard, hold_back=8, check_every=8)
    stream = client(gw.url).chat.completions.create(model=MODEL_ALIAS, messages=STORY,
                                                    stream=True, **FIXED)
    finishes = [c.finish_reason for chunk in stream for c in chunk.choices if c.finish_reason]
    assert finishes == ["content_filter"]
    [ex] = gw.wait_for_exchanges(1)
    assert ex.response_verdicts[-1].status.value == "ok"
    assert ex.response_verdicts[-1].detector == guard.detector.name
    assert ex.response_embedding is not None


def test_concurrent_streams_all_complete(llama_server, run_gateway, client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"))
    errors: list[BaseException] = []

    def one() -> None:
        try:
            s = client(gw.url).chat.completions.create(model=MODEL_ALIAS, messages=STORY,
                                                       stream=True, max_tokens=8)
            assert any(c.choices and c.choices[0].finish_reason for c in s)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(gw.wait_for_exchanges(4)) == 4


def test_developer_messages_reach_llama_cpp_as_system(llama_server, run_gateway, client):
    """OpenAI's clients now send instructions as 'developer' messages, which
    llama.cpp's server refuses; the gateway sends them as 'system'."""
    messages = [{"role": "developer", "content": "Answer in one short sentence."},
                {"role": "user", "content": "What is a GGUF file?"}]
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"))
    reply = client(gw.url).chat.completions.create(model=MODEL_ALIAS, messages=messages, **FIXED)
    assert reply.choices[0].message.content
    kept = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"),
                       keep_developer_role=True)
    with pytest.raises(openai.APIStatusError) as err:  # the server's own refusal, passed on
        client(kept.url).chat.completions.create(model=MODEL_ALIAS, messages=messages, **FIXED)
    assert err.value.status_code >= 400 and "developer" in str(err.value)


def test_max_completion_tokens_caps_a_llama_cpp_answer(llama_server, run_gateway, client):
    """OpenAI's newer name for the cap, which llama.cpp's server ignores: it
    would write until its context is full. The gateway passes it as max_tokens."""
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"))
    reply = client(gw.url).chat.completions.create(
        model=MODEL_ALIAS, messages=STORY, temperature=0.0, max_completion_tokens=8)
    assert reply.usage.completion_tokens <= 8 and reply.choices[0].finish_reason == "length"


def test_text_content_parts_reach_llama_cpp_as_a_string(llama_server, run_gateway, client):
    """OpenAI's typed messages give text as content parts; llama.cpp's chat
    templates fail on an array. Text-only parts go upstream as one string."""
    parts = [{"role": "user", "content": [{"type": "text", "text": "Write a story"},
                                          {"type": "text", "text": "about a cat."}]}]
    r = httpx.post(llama_server + "/chat/completions", timeout=600,
                   json={"model": MODEL_ALIAS, "messages": parts, "max_tokens": 8})
    assert r.status_code >= 400, "premise: the server refuses content parts"
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"))
    reply = client(gw.url).chat.completions.create(model=MODEL_ALIAS, messages=parts, **FIXED)
    assert reply.choices[0].message.content
    [ex] = gw.wait_for_exchanges(1)
    assert ex.prompt_text == "Write a story\nabout a cat."


AGENT_TURN = [
    {"role": "user", "content": "Summarise this page for me."},
    {"role": "assistant", "content": None,
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "fetch_page", "arguments": '{"url": "https://x.org"}'}}]},
    {"role": "tool", "tool_call_id": "call_1",
     "content": "Lisbon in spring: ride tram 28 early and try the custard tarts."}]


def test_tool_call_turns_with_null_content_reach_llama_cpp(llama_server, run_gateway, client):
    """OpenAI's clients send an assistant turn of tool calls with null
    content, which llama-cpp-python's server refuses; the gateway sends "".
    Through chat completions and through the Responses API's function calls."""
    r = httpx.post(llama_server + "/chat/completions", timeout=600,
                   json={"model": MODEL_ALIAS, "messages": AGENT_TURN, "max_tokens": 8})
    assert r.status_code >= 400, "premise: the server refuses null content"
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"))
    c = client(gw.url)
    reply = c.chat.completions.create(model=MODEL_ALIAS, messages=AGENT_TURN, **FIXED)
    assert reply.choices[0].message.content
    answer = c.responses.create(model=MODEL_ALIAS, max_output_tokens=16, input=[
        {"role": "user", "content": "Summarise this page for me."},
        {"type": "function_call", "call_id": "call_1", "name": "fetch_page",
         "arguments": '{"url": "https://x.org"}'},
        {"type": "function_call_output", "call_id": "call_1",
         "output": "Lisbon in spring: ride tram 28 early and try the custard tarts."}])
    assert answer.status in ("completed", "incomplete") and answer.output_text
