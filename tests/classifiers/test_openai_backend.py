"""Timeouts, retries, the circuit breaker and secrets of the shared HTTP
client. The faults (500s, hangs, connection resets) come from
``httpx.MockTransport`` because a real server cannot produce them on demand."""

import asyncio
import math

import httpx
import pytest
from backend_helpers import completion_body

from guardstack.classifiers.base import HARM, Subject
from guardstack.classifiers.llama_guard import LlamaGuard3
from guardstack.classifiers.openai_backend import (
    BackendError,
    CircuitBreaker,
    OpenAIClient,
    label_probability,
    normalize_base_url,
    resolve_secret,
)
from guardstack.verdict import Status

SAFE = completion_body("safe", [{"safe": 0.8, "unsafe": 0.2}])


def guard(server, **kw):
    kw.setdefault("max_retries", 2)
    return LlamaGuard3("http://guard:8000", "lg3", transport=server.transport, **kw)


def fast_backoff(backend):
    backend.client.backoff_s = backend.client.backoff_max_s = 0.001
    return backend


async def test_server_errors_are_retried_then_succeed(fake_server):
    calls = []

    def reply(body, path):
        calls.append(1)
        return httpx.Response(503, json={"error": {"message": "loading"}}) if len(calls) < 3 \
            else SAFE

    async with fast_backoff(guard(fake_server(reply))) as g:
        (d,) = await g.detect([Subject("hello")])
    assert d.status is Status.OK and d.scores[HARM] == pytest.approx(0.2)
    assert len(calls) == 3
    assert g.client.stats.retries == 2


async def test_persistent_500_becomes_an_error_detection(fake_server):
    server = fake_server(lambda body, path: httpx.Response(500, text="boom"))
    async with fast_backoff(guard(server, max_retries=1)) as g:
        (d,) = await g.detect([Subject("hello")])
    assert d.status is Status.ERROR
    assert "HTTP 500" in (d.error or "") and "after 2 attempts" in (d.error or "")
    assert len(server.requests) == 2


async def test_client_errors_are_not_retried(fake_server):
    server = fake_server(lambda body, path: httpx.Response(
        400, json={"error": {"message": "model 'lg3' not found"}}))
    async with fast_backoff(guard(server)) as g:
        (d,) = await g.detect([Subject("hello")])
    assert d.status is Status.ERROR and "model 'lg3' not found" in (d.error or "")
    assert len(server.requests) == 1


async def test_a_hanging_server_times_out_per_attempt():
    # A real socket that accepts the request and never answers.
    seen, stop = [], asyncio.Event()

    async def silent(reader, writer):
        seen.append(await reader.read(1))
        await stop.wait()
        writer.close()
        await writer.wait_closed()

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        g = fast_backoff(LlamaGuard3(f"http://127.0.0.1:{port}", "lg3", timeout=0.1,
                                     max_retries=1))
        async with g:
            (d,) = await g.detect([Subject("hello")])
    finally:
        stop.set()
        srv.close()
        await srv.wait_closed()
    assert d.status is Status.ERROR and "timed out after 0.1 s" in (d.error or "")
    assert len(seen) == 2  # the first attempt and one retry
    assert d.latency_ms >= 200


async def test_connection_resets_are_retried(fake_server):
    calls = []

    def reply(body, path):
        calls.append(1)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return SAFE

    async with fast_backoff(guard(fake_server(reply))) as g:
        (d,) = await g.detect([Subject("hello")])
    assert d.status is Status.OK and len(calls) == 2


async def test_retry_after_is_honoured_up_to_the_cap(fake_server, monkeypatch):
    slept = []
    real_sleep = asyncio.sleep

    async def record(delay):
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("guardstack.classifiers.openai_backend.asyncio.sleep", record)
    calls = []

    def reply(body, path):
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0.5"}, json={})
        if len(calls) == 2:
            return httpx.Response(429, headers={"Retry-After": "120"}, json={})
        return SAFE

    async with guard(fake_server(reply)) as g:
        (d,) = await g.detect([Subject("hello")])
    assert d.status is Status.OK
    assert slept == [0.5, g.client.backoff_max_s]


def test_backoff_grows_exponentially_with_jitter():
    client = OpenAIClient("http://guard:8000", "m", backoff_s=0.1, backoff_max_s=1.0)
    for attempt, cap in [(0, 0.1), (1, 0.2), (2, 0.4), (5, 1.0)]:
        delays = [client._backoff(attempt, None) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)


@pytest.mark.parametrize("body", [
    httpx.Response(200, text="<html>gateway</html>"),
    httpx.Response(200, json={"choices": []}),
    httpx.Response(200, json={"choices": [{"text": None}]}),
    httpx.Response(200, json=["not", "an", "object"]),
])
async def test_malformed_server_responses_are_errors(fake_server, body):
    async with fast_backoff(guard(fake_server(lambda b, p: body))) as g:
        (d,) = await g.detect([Subject("hello")])
    assert d.status is Status.ERROR


async def test_circuit_opens_after_repeated_failures_and_recovers(fake_server):
    now = [0.0]
    healthy = [False]

    def reply(body, path):
        return SAFE if healthy[0] else httpx.Response(502, text="bad gateway")

    server = fake_server(reply)
    g = fast_backoff(guard(server, max_retries=0, breaker_threshold=3, breaker_reset_s=10))
    g.client.breaker = CircuitBreaker(3, 10, clock=lambda: now[0])
    async with g:
        for _ in range(3):
            (d,) = await g.detect([Subject("x")])
            assert d.status is Status.ERROR and "HTTP 502" in (d.error or "")
        assert g.client.breaker.state == "open"
        (d,) = await g.detect([Subject("x")])
        assert "circuit open" in (d.error or "")
        assert len(server.requests) == 3  # short-circuited: no request sent

        now[0] = 11.0  # half-open: one trial request
        healthy[0] = True
        (d,) = await g.detect([Subject("x")])
        assert d.status is Status.OK
        assert g.client.breaker.state == "closed"


def test_half_open_trial_failure_reopens():
    now = [0.0]
    b = CircuitBreaker(1, 5, clock=lambda: now[0])
    b.record_failure()
    assert not b.allow()
    now[0] = 6
    assert b.allow() and not b.allow()  # one trial at a time
    b.record_failure()
    assert b.state == "open"


async def test_unparseable_output_does_not_trip_the_breaker(fake_server):
    server = fake_server(lambda b, p: completion_body("banana"))
    async with guard(server, breaker_threshold=1) as g:
        for _ in range(3):
            (d,) = await g.detect([Subject("x")])
            assert "unparseable" in (d.error or "")
    assert len(server.requests) == 3


async def test_concurrency_is_bounded(fake_server):
    in_flight, peak = [0], [0]

    async def reply(body, path):
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        await asyncio.sleep(0.01)
        in_flight[0] -= 1
        return SAFE

    async with guard(fake_server(reply), concurrency=3) as g:
        out = await g.detect([Subject(f"text {i}") for i in range(10)])
    assert all(d.status is Status.OK for d in out)
    assert peak[0] == 3


# -- secrets --------------------------------------------------------------------


def test_secret_references(monkeypatch):
    monkeypatch.setenv("GUARD_KEY_FOR_TEST", "s3cret")
    assert resolve_secret(None) is None
    assert resolve_secret("literal-key") == "literal-key"
    assert resolve_secret("os.environ/GUARD_KEY_FOR_TEST") == "s3cret"
    assert resolve_secret({"$env": "GUARD_KEY_FOR_TEST"}) == "s3cret"
    monkeypatch.delenv("GUARD_KEY_FOR_TEST")
    with pytest.raises(BackendError, match="GUARD_KEY_FOR_TEST"):
        resolve_secret("os.environ/GUARD_KEY_FOR_TEST")
    with pytest.raises(BackendError):
        resolve_secret({"env": "X"})


async def test_api_key_is_resolved_late_and_sent_as_bearer(fake_server, monkeypatch):
    monkeypatch.delenv("GUARD_KEY_FOR_TEST", raising=False)
    server = fake_server(lambda b, p: SAFE)
    g = guard(server, api_key={"$env": "GUARD_KEY_FOR_TEST"})  # unset: no error yet
    assert "GUARD_KEY" not in repr(g) and "s3cret" not in repr(g.client)
    (d,) = await g.detect([Subject("x")])
    assert d.status is Status.ERROR and "GUARD_KEY_FOR_TEST" in (d.error or "")
    monkeypatch.setenv("GUARD_KEY_FOR_TEST", "s3cret")
    (d,) = await g.detect([Subject("x")])
    await g.aclose()
    assert d.status is Status.OK
    assert server.requests[-1][2]["authorization"] == "Bearer s3cret"


# -- small pieces --------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("http://gpu:8000", "http://gpu:8000/v1"),
    ("http://gpu:8000/", "http://gpu:8000/v1"),
    ("https://gpu/v1/", "https://gpu/v1"),
    ("http://gw/openai/v1", "http://gw/openai/v1"),
])
def test_base_url_normalization(url, expected):
    assert normalize_base_url(url) == expected


@pytest.mark.parametrize("url", ["gpu:8000", "ftp://gpu", ""])
def test_bad_base_url_is_a_clear_error(url):
    with pytest.raises(ValueError, match=r"must be http\(s\)://host"):
        normalize_base_url(url)


def test_label_probability_renormalizes_and_matches_spellings():
    top = {" Unsafe": math.log(0.3), "safe": math.log(0.1), "x": math.log(0.6)}
    assert label_probability(top, ["unsafe"], ["safe"]) == pytest.approx(0.75)
    assert label_probability({"x": 0.0}, ["unsafe"], ["safe"]) is None
    assert label_probability({"unsafe": math.log(0.7)}, ["unsafe"], ["safe"]) \
        == pytest.approx(0.7)
    assert label_probability({"safe": math.log(0.9)}, ["unsafe"], ["safe"]) \
        == pytest.approx(0.1)


def test_detect_sync_works_inside_and_outside_an_event_loop(fake_server):
    g = guard(fake_server(lambda b, p: SAFE))
    (d,) = g.detect_sync([Subject("x")])
    assert d.status is Status.OK

    async def inside():
        return g.detect_sync([Subject("y")])

    (d,) = asyncio.run(inside())
    assert d.status is Status.OK


def test_every_command_resolves_secrets_the_same_way(monkeypatch):
    from guardstack.gateway.commands import resolve_secret as gateway_resolve
    from guardstack.secrets import SecretError
    from guardstack.secrets import resolve_secret as shared

    monkeypatch.setenv("GUARD_KEY_FOR_TEST", "s3cret")
    for ref in ("os.environ/GUARD_KEY_FOR_TEST", "$env:GUARD_KEY_FOR_TEST"):
        assert shared(ref) == gateway_resolve(ref) == resolve_secret(ref) == "s3cret"
    monkeypatch.setenv("GUARD_KEY_FOR_TEST", "")
    with pytest.raises(SecretError, match=r"GUARD_KEY_FOR_TEST \(from --api-key\) is not set"):
        shared("os.environ/GUARD_KEY_FOR_TEST", "--api-key")
