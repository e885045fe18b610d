"""Bad requests get the right status and a clear OpenAI-style error, never a
traceback. The gateway rejects them before the upstream is contacted, so the
upstream here is a loopback port nothing listens on."""

from __future__ import annotations

import httpx
import openai
import pytest
from tests.fixtures.llama_server import free_port
from tests.gateway.standins import marker_guard

CHAT = "/v1/chat/completions"


@pytest.fixture
def gw(run_gateway):
    return run_gateway(f"http://127.0.0.1:{free_port()}/v1", guard=marker_guard("x"))


def post(gw, raw: bytes, path: str = CHAT, **headers: str) -> httpx.Response:
    return httpx.post(gw.url + path, content=raw,
                      headers={"content-type": "application/json", **headers}, timeout=30)


def assert_error(r: httpx.Response, status: int, *, param: str | None = None,
                 code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert err["message"] and "Traceback" not in r.text
    if param is not None:
        assert err["param"] == param
    if code is not None:
        assert err["code"] == code
    return err


def test_invalid_json_is_400(gw):
    err = assert_error(post(gw, b'{"model": "m", "messages": ['), 400, code="invalid_json")
    assert "not valid JSON" in err["message"]


def test_json_that_is_not_an_object_is_400(gw):
    assert_error(post(gw, b'["model"]'), 400, code="invalid_json")


def test_empty_body_is_400(gw):
    assert_error(post(gw, b""), 400, code="invalid_json")


def test_invalid_utf8_is_400(gw):
    err = assert_error(post(gw, b'{"model": "m", "messages": "\xff\xfe"}'), 400,
                       code="invalid_encoding")
    assert "UTF-8" in err["message"]


def test_missing_messages_is_400_naming_the_param(gw):
    assert_error(post(gw, b'{"model": "m"}'), 400, param="messages",
                 code="missing_required_parameter")


def test_missing_model_is_400(gw):
    assert_error(post(gw, b'{"messages": [{"role": "user", "content": "hi"}]}'), 400,
                 param="model")


@pytest.mark.parametrize(("body", "param"), [
    (b'{"model": "m", "messages": "hello"}', "messages"),
    (b'{"model": "m", "messages": []}', "messages"),
    (b'{"model": 5, "messages": [{"role": "user", "content": "hi"}]}', "model"),
    (b'{"model": "m", "messages": [5]}', "messages[0]"),
    (b'{"model": "m", "messages": [{"content": "hi"}]}', "messages[0].role"),
    (b'{"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}', "messages[0].role"),
    (b'{"model": "m", "messages": [{"role": "user", "content": 42}]}', "messages[0].content"),
    (b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}',
     "messages[0].content[0].text"),
    (b'{"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}',
     "stream"),
    (b'{"model": "m", "user": 7, "messages": [{"role": "user", "content": "hi"}]}', "user"),
])
def test_wrong_types_are_400_naming_the_param(gw, body, param):
    assert_error(post(gw, body), 400, param=param)


def test_completions_prompt_checked_too(gw):
    assert_error(post(gw, b'{"model": "m"}', "/v1/completions"), 400, param="prompt")
    assert_error(post(gw, b'{"model": "m", "prompt": {"a": 1}}', "/v1/completions"), 400,
                 param="prompt")
    assert_error(post(gw, b'{"model": "m", "prompt": "def f(", "suffix": 5}',
                      "/v1/completions"), 400, param="suffix", code="invalid_type")


def test_ten_megabyte_body_is_413(gw):
    big = b'{"model": "m", "messages": [{"role": "user", "content": "' + b"a" * 10_000_000 \
        + b'"}]}'
    assert_error(post(gw, big), 413, code="request_too_large")


def test_chunked_body_over_the_limit_is_413(gw):
    def chunks():
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}]}'

    r = httpx.post(gw.url + CHAT, content=chunks(), timeout=30)
    assert_error(r, 413)


def test_body_limit_is_configurable(run_gateway):
    gw = run_gateway(f"http://127.0.0.1:{free_port()}/v1", guard=marker_guard("x"),
                     max_body_bytes=100)
    body = b'{"model": "m", "messages": [{"role": "user", "content": "' + b"a" * 200 + b'"}]}'
    assert_error(post(gw, body), 413)


def test_unknown_path_and_wrong_method_use_the_envelope(gw):
    assert_error(httpx.get(gw.url + "/v1/nothing"), 404)
    assert_error(httpx.get(gw.url + CHAT), 405)


def test_openai_client_sees_bad_request_error(gw):
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0) as c:
        with pytest.raises(openai.BadRequestError) as err:
            c.chat.completions.create(model="m", messages=[])
        assert err.value.body["param"] == "messages"


def test_rejected_requests_are_recorded(gw):
    post(gw, b"not json")
    [ex] = gw.wait_for_exchanges(1)
    assert ex.status_code == 400 and "JSON" in ex.error


HI = '"messages": [{"role": "user", "content": "hi"}]'


@pytest.mark.parametrize(("path", "body", "param"), [
    (CHAT, f'{{"model": "m", "max_tokens": "abc", {HI}}}', "max_tokens"),
    (CHAT, f'{{"model": "m", "temperature": "hot", {HI}}}', "temperature"),
    (CHAT, f'{{"model": "m", "top_p": true, {HI}}}', "top_p"),
    (CHAT, f'{{"model": "m", "n": 1.5, {HI}}}', "n"),
    (CHAT, f'{{"model": "m", "stop": [1, 2], {HI}}}', "stop"),
    ("/v1/completions", '{"model": "m", "prompt": "hi", "max_tokens": "8"}', "max_tokens"),
    ("/v1/responses", '{"model": "m", "input": "hi", "max_output_tokens": "x"}',
     "max_output_tokens"),
])
def test_sampling_fields_of_the_wrong_type_are_400_not_the_model_servers_error(
        gw, path, body, param):
    # Sent on, llama.cpp's server answers these with a 500 holding its own file paths.
    assert_error(post(gw, body.encode(), path), 400, param=param, code="invalid_type")


def test_sampling_fields_of_the_right_type_or_null_go_on_to_the_model_server(gw):
    body = (f'{{"model": "m", "max_tokens": 8.0, "temperature": 0, "top_p": 0.9, "seed": null, '
            f'"stop": ["\\n"], {HI}}}')
    assert_error(post(gw, body.encode()), 502)  # the upstream of this fixture is down


def test_the_anthropic_and_ollama_apis_check_sampling_fields_too(gw):
    r = post(gw, b'{"model": "m", "max_tokens": 8, "temperature": "hot", "messages": '
                 b'[{"role": "user", "content": "hi"}]}', "/v1/messages")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "'temperature'" in r.json()["error"]["message"]
    r = post(gw, b'{"model": "m", "options": {"top_k": "many"}, "messages": '
                 b'[{"role": "user", "content": "hi"}]}', "/api/chat")
    assert r.status_code == 400, r.text
    assert "'options.top_k'" in r.json()["error"]


def test_messages_name_what_each_api_expects(gw):
    r = post(gw, b'{"model": "m", "messages": [{"role": "developer", "content": "hi"}]}',
             "/api/chat")
    assert r.status_code == 400, r.text
    assert "expected one of system, user, assistant, tool" in r.json()["error"]  # Ollama's
    err = assert_error(post(gw, b'{"input": []}', "/v1/moderations"), 400, param="input")
    assert "must not be empty" in err["message"]


@pytest.mark.parametrize(("raw", "said"), [
    (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
     "NaN"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_p": -Infinity}',
     "-Infinity"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "metadata": {"a": 1e309}}',
     "out of range"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": '
     + b"9" * 5000 + b"}", "digits"),
    (b'{"model": "m", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
])
def test_json_python_reads_but_no_client_can_send_on_is_400(gw, raw, said):
    # NaN, infinities, integers past Python's limit and deep nesting parse (or
    # crash the parser) but could never be forwarded: a 400, not a 500.
    err = assert_error(post(gw, raw), 400, code="invalid_json")
    assert said in err["message"]


@pytest.mark.parametrize("path", [CHAT, "/v1/completions", "/v1/responses", "/v1/moderations",
                                  "/api/chat", "/v1/messages"])
def test_a_lone_surrogate_is_400_on_every_endpoint(gw, path):
    raw = (b'{"model": "m", "messages": [{"role": "user", "content": "a\\ud800b"}], '
           b'"prompt": "x", "input": "x", "max_tokens": 5}')
    r = post(gw, raw, path)
    assert r.status_code == 400, r.text
    assert "surrogate" in r.text and "\\ud800" in r.text and "Traceback" not in r.text


def test_escaped_surrogate_pairs_are_text(run_gateway, scripted):
    # Python's json (and so the openai client) escapes an emoji as a pair.
    from tests.gateway.scripted import json_reply, upstream
    reply = json_reply(b'{"id": "c1", "object": "chat.completion", "created": 1, "model": "m", '
                       b'"choices": [{"index": 0, "finish_reason": "stop", '
                       b'"message": {"role": "assistant", "content": "ok"}}]}')
    gw = run_gateway(upstream(scripted, reply).url, guard=marker_guard("x"))
    r = post(gw, b'{"model": "m", "messages": [{"role": "user", "content": "hi \\ud83d\\ude00"}]}')
    assert r.status_code == 200, r.text
    [ex] = gw.wait_for_exchanges(1)
    assert ex.prompt_text.endswith("\U0001f600")


def test_a_client_that_leaves_mid_body_is_recorded_not_logged_as_a_failure(gw, caplog):
    import socket
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                  b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"mo")
    [ex] = gw.wait_for_exchanges(1)
    assert ex.client_disconnected and ex.status_code == 499
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_body_that_stops_arriving_is_408(gw, monkeypatch):
    import socket

    from guardstack.gateway import validation
    monkeypatch.setattr(validation, "BODY_IDLE_TIMEOUT_S", 0.5)
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                  b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"mo")
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_a_wrong_method_on_anthropics_paths_answers_in_anthropics_shape(gw, path):
    r = httpx.get(gw.url + path, timeout=30)
    assert r.status_code == 405
    body = r.json()
    assert body["type"] == "error" and "GET" in body["error"]["message"]


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_a_compressed_body_is_415_not_a_utf8_error(gw, encoding):
    import gzip
    raw = gzip.compress(b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
    err = assert_error(post(gw, raw, **{"content-encoding": encoding}), 415,
                       code="unsupported_encoding")
    assert encoding in err["message"]


def test_ollama_show_names_a_model_of_the_wrong_type_as_such(gw):
    r = post(gw, b'{"model": 5}', "/api/show")
    assert r.status_code == 400 and "expected a string, got int" in r.json()["error"]
    r = post(gw, b'{}', "/api/show")
    assert r.status_code == 400 and "Missing required parameter" in r.json()["error"]
