"""Faults: a broken upstream and a broken classifier. Upstream faults come
from a raw TCP server on loopback that answers with scripted bytes (garbage,
a stream cut off mid-chunk, silence), so the gateway meets them through its
real HTTP client; classifier faults from stand-in detectors."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
from tests.fixtures.llama_server import free_port
from tests.gateway.scripted import sse_reply, upstream
from tests.gateway.standins import BrokenDetector, marker_guard, policy_yaml

from guardstack.guard import Guard

MSG = [{"role": "user", "content": "Write a story about a cat."}]


def chunk(content: str, finish: str | None = None) -> bytes:
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def stream_events(url: str) -> list[dict | str]:
    out: list[dict | str] = []
    with httpx.stream("POST", url + "/v1/chat/completions", timeout=30,
                      json={"model": "m", "messages": MSG, "stream": True}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                payload = line[6:]
                out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def test_upstream_refused_is_502(run_gateway):
    gw = run_gateway(f"http://127.0.0.1:{free_port()}/v1", guard=marker_guard("x"))
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": MSG})
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_unavailable"
    with (openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0) as c,
          pytest.raises(openai.InternalServerError)):
        c.chat.completions.create(model="m", messages=MSG)


def test_an_unreachable_upstream_is_logged_once_and_its_return_too(run_gateway, caplog):
    """An operator sees the outage in the log (not only as access lines), once
    rather than per request, and when the upstream answers again."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from tests.gateway.serving import serve_app

    async def chat(request):
        return JSONResponse({"id": "c1", "object": "chat.completion", "created": 1,
                             "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Hello."}}]})

    port = free_port()
    gw = run_gateway(f"http://127.0.0.1:{port}/v1", guard=marker_guard("x"))
    caplog.set_level("WARNING", logger="guardstack.gateway")
    for _ in range(3):
        r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": MSG})
        assert r.status_code == 502
    down = [r for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert len(down) == 1 and f"127.0.0.1:{port}" in down[0].getMessage()
    with serve_app(Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])]),
                   port=port):
        r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": MSG})
        assert r.status_code == 200
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_silent_upstream_is_504(run_gateway, scripted):
    up = upstream(scripted, b"", hang=True)
    gw = run_gateway(up.url, guard=marker_guard("x"), upstream_timeout=0.5)
    start = time.monotonic()
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": MSG},
                   timeout=30)
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - start < 10
    [ex] = gw.wait_for_exchanges(1)
    assert ex.status_code == 504


def test_garbage_stream_ends_cleanly_with_an_error(run_gateway, scripted):
    up = upstream(scripted, sse_reply(chunk("Once") + b"<html>502 Bad Gateway</html>\n\n"))
    gw = run_gateway(up.url, guard=marker_guard("x"), hold_back=0)
    events = stream_events(gw.url)
    assert events[-1] == "[DONE]"
    err = events[-2]["error"]
    assert err["code"] == "upstream_error" and "not server-sent events" in err["message"]
    [ex] = gw.wait_for_exchanges(1)
    assert ex.error and ex.status_code == 502


def test_non_json_event_ends_cleanly_with_an_error(run_gateway, scripted):
    up = upstream(scripted, sse_reply(chunk("Once") + b"data: {not json\n\n"))
    gw = run_gateway(up.url, guard=marker_guard("x"))
    events = stream_events(gw.url)
    assert "not JSON" in events[-2]["error"]["message"] and events[-1] == "[DONE]"


def test_upstream_stopping_mid_chunk_ends_cleanly_with_an_error(run_gateway, scripted,
                                                                 caplog):
    # A chunked body cut off inside a chunk: the connection closes mid-event.
    first = chunk("Once")
    body = hex(len(first))[2:].encode() + b"\r\n" + first + b"\r\n" + b"40\r\ndata: {\"id\""
    up = upstream(scripted, sse_reply(body, chunked=True))
    gw = run_gateway(up.url, guard=marker_guard("x"), hold_back=16)
    events = stream_events(gw.url)
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "upstream_error"
    # "Once" was held back, never checked: it is dropped, not flushed.
    assert not any(isinstance(e, dict) and "choices" in e for e in events)
    [ex] = gw.wait_for_exchanges(1)
    assert "broke off" in ex.error or "middle" in ex.error
    # ... and the operator's log says so (the access line alone reads 200)
    assert any(r.name == "guardstack.gateway" and up.url.removesuffix("/v1") in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_stream_ending_without_finish_or_done_is_an_error(run_gateway, scripted):
    up = upstream(scripted, sse_reply(chunk("Once") + chunk(" upon")))
    gw = run_gateway(up.url, guard=marker_guard("x"))
    events = stream_events(gw.url)
    assert "ended before the completion finished" in events[-2]["error"]["message"]


@pytest.mark.parametrize("sent", [b"", b"role", b"text"])
def test_a_stream_done_before_any_finish_reason_is_an_error(run_gateway, scripted, sent):
    # llama-cpp-python under concurrent streams: a role chunk (or nothing), then [DONE]
    first = {b"": b"", b"role": chunk(""), b"text": chunk("Once") + chunk(" upon")}[sent]
    up = upstream(scripted, sse_reply(first + b"data: [DONE]\n\n"))
    gw = run_gateway(up.url, guard=marker_guard("x"), hold_back=0)
    events = stream_events(gw.url)
    assert "before the completion finished" in events[-2]["error"]["message"]
    assert events[-1] == "[DONE]"
    [ex] = gw.wait_for_exchanges(1)
    assert ex.status_code == 502 and "no finish_reason" in ex.error


def test_openai_client_raises_on_a_broken_stream(run_gateway, scripted):
    up = upstream(scripted, sse_reply(chunk("Once") + b"garbage\n\n"))
    gw = run_gateway(up.url, guard=marker_guard("x"))
    with (openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0) as c,
          pytest.raises(openai.APIError)):
        for _ in c.chat.completions.create(model="m", messages=MSG, stream=True):
            pass


def test_stalled_stream_times_out_with_an_error(run_gateway, scripted):
    first = chunk("Once")
    body = hex(len(first))[2:].encode() + b"\r\n" + first + b"\r\n"  # then silence
    up = upstream(scripted, sse_reply(body, chunked=True), hang=True)
    gw = run_gateway(up.url, guard=marker_guard("x"), upstream_timeout=0.5)
    events = stream_events(gw.url)
    assert "timed out" in events[-2]["error"]["message"]


def test_upstream_in_band_error_event_is_passed_on(run_gateway, scripted):
    err = b'data: {"error": {"message": "model crashed", "type": "server_error"}}\n\n'
    up = upstream(scripted, sse_reply(chunk("Once") + err))
    gw = run_gateway(up.url, guard=marker_guard("x"), hold_back=0)
    events = stream_events(gw.url)
    assert events[-2] == {"error": {"message": "model crashed", "type": "server_error"}}


def test_upstream_http_error_passes_through_faithfully(run_gateway, scripted):
    body = b'{"detail": "overloaded"}'
    reply = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
             b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    up = upstream(scripted, reply)
    gw = run_gateway(up.url, guard=marker_guard("x"))
    for stream in (False, True):
        r = httpx.post(gw.url + "/v1/chat/completions",
                       json={"model": "m", "messages": MSG, "stream": stream})
        assert (r.status_code, r.content) == (503, body)


def test_malformed_non_streamed_upstream_response_is_502(run_gateway, scripted):
    body = b"<html>oops</html>"
    reply = (b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: "
             + str(len(body)).encode() + b"\r\n\r\n" + body)
    up = upstream(scripted, reply)
    gw = run_gateway(up.url, guard=marker_guard("x"))
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": MSG})
    assert r.status_code == 502 and "malformed" in r.json()["error"]["message"]


def test_classifier_error_fails_open_and_is_recorded(run_gateway):
    guard = Guard(policy_yaml(on_error="open"), detector=BrokenDetector())
    gw = run_gateway(f"http://127.0.0.1:{free_port()}/v1", guard=guard)
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": MSG})
    assert r.status_code == 502  # forwarded (fail-open): the upstream is down
    [ex] = gw.wait_for_exchanges(1)
    v = ex.prompt_verdicts[0]
    assert v.status.value == "error" and v.decision.value == "allow"
    assert "classifier exploded" in v.reason


def test_classifier_timeout_fails_closed_and_is_recorded(run_gateway):
    guard = Guard(policy_yaml(on_error="closed", timeout_ms=200), detector=BrokenDetector(hang=5))
    gw = run_gateway(f"http://127.0.0.1:{free_port()}/v1", guard=guard)
    start = time.monotonic()
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": MSG},
                   timeout=30)
    assert time.monotonic() - start < 3
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "content_filter" and "could not be checked" in err["message"]
    [ex] = gw.wait_for_exchanges(1)
    assert ex.prompt_verdicts[0].status.value == "error"
    assert "timed out" in ex.prompt_verdicts[0].reason
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'guardstack_classifier_errors_total{decision="block",role="prompt"} 1.0' in metrics


def test_client_disconnect_closes_the_upstream_connection(run_gateway, scripted):
    """The upstream streams a few tokens and then keeps the stream open; when
    the client hangs up, the gateway must close its upstream connection (which
    is how a real server learns to stop generating) and still record."""
    first = b"".join(chunk(f" w{i}") for i in range(4))
    body = hex(len(first))[2:].encode() + b"\r\n" + first + b"\r\n"
    up = upstream(scripted, sse_reply(body, chunked=True), hang=True)
    gw = run_gateway(up.url, guard=marker_guard("x"), hold_back=0, upstream_timeout=60)
    with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=30,
                      json={"model": "m", "messages": MSG, "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                break
    assert up.peer_closed.wait(10), "gateway kept the upstream stream open"
    [ex] = gw.wait_for_exchanges(1)
    assert ex.client_disconnected and ex.tokens_streamed >= 1


def test_client_disconnect_from_a_responses_stream_closes_the_upstream(run_gateway, scripted):
    """The same through the Responses API bridge, whose events wrap the
    relayed chunks: hanging up must still reach the upstream and the record."""
    first = b"".join(chunk(f" w{i}") for i in range(4))
    body = hex(len(first))[2:].encode() + b"\r\n" + first + b"\r\n"
    up = upstream(scripted, sse_reply(body, chunked=True), hang=True)
    gw = run_gateway(up.url, guard=marker_guard("x"), hold_back=0, upstream_timeout=60)
    with httpx.stream("POST", gw.url + "/v1/responses", timeout=30,
                      json={"model": "m", "input": "Hi", "stream": True}) as r:
        for line in r.iter_lines():
            if "response.output_text.delta" in line:
                break
    assert up.peer_closed.wait(10), "gateway kept the upstream stream open"
    [ex] = gw.wait_for_exchanges(1)
    assert ex.endpoint == "responses" and ex.client_disconnected and ex.tokens_streamed >= 1


def test_a_client_that_hangs_up_on_a_non_streamed_request_frees_the_upstream(run_gateway,
                                                                             scripted):
    """The upstream takes the request and is still generating (silent) when the
    client hangs up: the gateway must close its upstream connection rather than
    keep the model busy for an answer nobody will read, and record why."""
    up = upstream(scripted, b"", hang=True)
    gw = run_gateway(up.url, guard=marker_guard("x"), upstream_timeout=60)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": MSG},
                   timeout=1.0)
    assert up.peer_closed.wait(10), "gateway kept the upstream request open"
    [ex] = gw.wait_for_exchanges(1)
    assert ex.client_disconnected and ex.status_code == 499
