"""Faults a real server cannot produce on demand, through httpx.MockTransport;
the connection-refused case uses a real closed port."""

import json

import httpx
import pytest
from tests.fixtures.llama_server import free_port

from guardstack.model import client
from guardstack.model.client import UpstreamError

MSGS = [{"role": "user", "content": "hi"}]


def _client(handler):
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _completion(text="Hello!", finish="stop"):
    return {"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text},
         "finish_reason": finish}]}


async def _chat(handler, **kw):
    async with _client(handler) as http:
        return await client.chat(http, "http://up/v1", "m", MSGS, max_tokens=8, **kw)


async def test_answer_and_request_body():
    seen = {}

    def handler(request):
        seen.update(json.loads(request.content))
        return httpx.Response(200, json=_completion())

    reply = await _chat(handler)
    assert reply.kind == "answer" and reply.text == "Hello!"
    assert seen["temperature"] == 0 and seen["max_tokens"] == 8 and seen["model"] == "m"


async def test_gateway_block_and_halt_are_results():
    blocked = await _chat(lambda r: httpx.Response(400, json={"error": {
        "message": "blocked", "type": "invalid_request_error", "param": "prompt",
        "code": "content_filter"}}))
    assert blocked.kind == "blocked"
    halted = await _chat(lambda r: httpx.Response(200, json=_completion("", "content_filter")))
    assert halted.kind == "halted"


@pytest.mark.parametrize("response, message", [
    (httpx.Response(500, json={"error": {"message": "model crashed"}}), "HTTP 500.*model crashed"),
    (httpx.Response(400, json={"error": {"message": "bad", "code": "other"}}), "HTTP 400.*bad"),
    (httpx.Response(200, text="<html>proxy</html>"), "not JSON"),
    (httpx.Response(200, json={"result": "hello"}), "not an OpenAI chat completion"),
    (httpx.Response(200, json={"choices": []}), "not an OpenAI chat completion"),
    (httpx.Response(502, text=""), r"HTTP 502.*\(empty body\)"),
])
async def test_bad_answers_are_clear_errors(response, message):
    with pytest.raises(UpstreamError, match=message) as info:
        await _chat(lambda r: response)
    assert not info.value.unreachable


async def test_slow_server_times_out_clearly():
    def handler(request):
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(UpstreamError, match="did not answer within 3 s"):
        await _chat(handler, timeout=3)


async def test_down_server_is_unreachable():
    async with httpx.AsyncClient() as http:
        with pytest.raises(UpstreamError, match="cannot connect") as info:
            await client.chat(http, f"http://127.0.0.1:{free_port()}/v1", "m", MSGS,
                              max_tokens=8)
    assert info.value.unreachable


def _sse(*chunks, done=True):
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
    return body + ("data: [DONE]\n\n" if done else "")


def _chunk(text=None, finish=None):
    delta = {"content": text} if text is not None else {}
    return {"object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def test_stream_answer_halt_and_faults():
    ok = await _chat(lambda r: httpx.Response(200, text=_sse(_chunk("Hel"), _chunk("lo"),
                                                              _chunk(finish="stop"))),
                     stream=True)
    assert (ok.kind, ok.text) == ("answer", "Hello")
    halted = await _chat(lambda r: httpx.Response(
        200, text=_sse(_chunk("Step 1"), _chunk(finish="content_filter"))), stream=True)
    assert halted.kind == "halted"
    with pytest.raises(UpstreamError, match="without \\[DONE\\]"):
        await _chat(lambda r: httpx.Response(200, text=_sse(_chunk("Hi"), done=False)),
                    stream=True)
    with pytest.raises(UpstreamError, match="error mid-stream: boom"):
        await _chat(lambda r: httpx.Response(200, text=_sse({"error": {"message": "boom"}})),
                    stream=True)
    blocked = await _chat(lambda r: httpx.Response(400, json={"error": {
        "message": "blocked", "code": "content_filter"}}), stream=True)
    assert blocked.kind == "blocked"


async def test_list_models_errors():
    async with _client(lambda r: httpx.Response(200, json={"nope": 1})) as http:
        with pytest.raises(UpstreamError, match="model list"):
            await client.list_models(http, "http://up/v1")
    async with _client(lambda r: httpx.Response(200, json={"data": [{"id": "a"}]})) as http:
        assert await client.list_models(http, "http://up/v1") == ["a"]


async def test_reasoning_and_tool_arguments_are_part_of_the_answer():
    """A reasoning model's chain of thought (vLLM's ``reasoning_content``,
    Ollama's ``reasoning``) and tool-call arguments are judged with the
    content, streamed or not, as the gateway judges them."""
    body = _completion("Done.")
    body["choices"][0]["message"].update(
        reasoning_content="Plan first.",
        tool_calls=[{"id": "c", "type": "function",
                     "function": {"name": "note", "arguments": '{"a": 1}'}}])
    reply = await _chat(lambda r: httpx.Response(200, json=body))
    assert reply.text == 'Plan first.\n\nDone.\n\n{"a": 1}'

    def delta(**fields):
        return {"object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": fields, "finish_reason": None}]}

    streamed = await _chat(lambda r: httpx.Response(200, text=_sse(
        delta(reasoning="Plan"), delta(reasoning=" first."), delta(content="Do"),
        delta(content="ne."), _chunk(finish="stop"))), stream=True)
    assert (streamed.kind, streamed.text) == ("answer", "Plan first.\n\nDone.")
