"""``guardstack serve`` as a user runs it: a subprocess in front of the real
llama.cpp server, the real default detector, a SQLite event store, and
SIGTERM at the end, after which every exchange must be in the store.

The policy flags instead of blocking so the test does not depend on what
the classifier scores; it only needs the classifier to have judged."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
import sqlalchemy as sa
from tests.fixtures.llama_server import MODEL_ALIAS, free_port
from tests.fixtures.processes import wait_for_http
from tests.gateway.otlp_collector import running_collector, running_grpc_collector
from tests.gateway.serving import serve_app
from tests.gateway.standins import listing_upstream

from guardstack.store import Store
from guardstack.store.schema import exchanges, messages

pytestmark = pytest.mark.slow

POLICY = """
version: 1
prompt: {default: {threshold: 0.5, action: flag}}
response: {default: {threshold: 0.5, action: flag}}
"""


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_serve_records_everything_and_flushes_on_sigterm(llama_server, tmp_path, protocol):
    """Traced too (``--otlp-traces-endpoint``, a collector the test runs):
    the spans still queued at SIGTERM are sent before the process exits.
    Over gRPC configured as vLLM's docs do: the SDK's environment names the
    protocol and plaintext, the endpoint is host:port."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    db = f"sqlite:///{tmp_path / 'gs.db'}"
    port = free_port()
    grpc = protocol == "grpc"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER_OTLP")}
    if grpc:
        env |= {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true"}
    with running_grpc_collector() if grpc else running_collector() as collector:
        endpoint = collector.url.removeprefix("http://") if grpc else collector.url
        proc = subprocess.Popen(
            [sys.executable, "-m", "guardstack", "serve", "--upstream", llama_server,
             "--port", str(port), "--open", "--db", db, "--policy", str(policy),
             "--otlp-traces-endpoint", endpoint, "--log-level", "warning"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(url + "/readyz", proc, what="guardstack serve", timeout=60,
                          output=lambda: proc.stdout.read().decode() if proc.stdout else "")
            with openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as c:
                story = [{"role": "user", "content": "Write a story about a cat."}]
                reply = c.chat.completions.create(model=MODEL_ALIAS, messages=story,
                                                  max_tokens=12)
                assert reply.choices[0].message.content
                stream = c.chat.completions.create(model=MODEL_ALIAS, messages=story,
                                                   max_tokens=12, stream=True)
                streamed = "".join(ch.choices[0].delta.content or "" for ch in stream
                                   if ch.choices)
                assert streamed
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()
    assert b"Traceback" not in out, out.decode()
    roots = collector.named("POST /v1/chat/completions")
    servers = [s for s in roots if s.kind == "server"]
    clients = [s for s in roots if s.kind == "client"]  # the calls to llama.cpp's server
    assert len(servers) == 2 and len(clients) == 2
    assert {s.parent_id for s in clients} == {s.span_id for s in servers}
    assert sorted(s.attributes["guardstack.stream"] for s in servers) == [False, True]
    store = Store(db)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(exchanges)).mappings().all()
        msgs = conn.execute(sa.select(messages)).mappings().all()
    store.dispose()
    assert len(rows) == 2
    assert all(r["prompt_decision"] in ("allow", "flag") for r in rows)
    assert all(m["detector"] == "fast" and m["status"] == "ok" for m in msgs)
    assert all(m["embedding"] is not None for m in msgs)


BLOCK_ALL = "version: 1\nprompt: {default: {threshold: 0.0, action: block}}\n"
ALLOW_ALL = "version: 1\nprompt: {default: {threshold: 0.0, action: allow}}\n"


def test_sighup_reloads_the_policy_and_keeps_it_when_the_new_one_is_wrong(tmp_path):
    """The upstream is a closed port: a blocked prompt is a 400, one the
    policy lets through is forwarded and fails with 502."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(BLOCK_ALL)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardstack", "serve", "--upstream",
         f"http://127.0.0.1:{free_port()}/v1", "--port", str(port), "--open",
         "--db", f"sqlite:///{tmp_path / 'gs.db'}", "--policy", str(policy),
         "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    body = {"model": "m", "messages": [{"role": "user", "content": "What do mitochondria do?"}]}

    def status_after_sighup(expected: int) -> int:
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while True:
            status = httpx.post(url + "/v1/chat/completions", json=body, timeout=30).status_code
            if status == expected or time.monotonic() > deadline:
                return status
            time.sleep(0.1)

    try:
        wait_for_http(url + "/healthz", proc, what="guardstack serve", timeout=60,
                      output=lambda: proc.stdout.read().decode() if proc.stdout else "")
        assert httpx.post(url + "/v1/chat/completions", json=body, timeout=30).status_code == 400
        policy.write_text(ALLOW_ALL)
        assert status_after_sighup(502) == 502
        policy.write_text("version: 1\nprompt: [")  # broken: the running policy stays
        proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert httpx.post(url + "/v1/chat/completions", json=body, timeout=30).status_code == 502
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    log = out.decode()
    assert proc.returncode == 0, log
    assert "policies reloaded" in log and "policies not reloaded" in log
    assert "policy.yaml:2" in log  # the broken file, named with its line
    # the closed upstream is in the text log once, not only as 502 access lines
    assert log.count("cannot be reached") == 1, log


def test_json_logs_are_one_object_per_line_with_a_record_per_exchange(llama_server, tmp_path):
    """``--log-format json``: every line a log pipeline reads is JSON; each
    exchange gets one access record, keyed by the request id the client got,
    without the text of the prompt or the answer."""
    import json

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardstack", "serve", "--upstream", llama_server,
         "--port", str(port), "--open", "--db", f"sqlite:///{tmp_path / 'gs.db'}",
         "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    prompt = "Name one colour of the rainbow."
    try:
        wait_for_http(url + "/readyz", proc, what="guardstack serve", timeout=60,
                      output=lambda: proc.stdout.read().decode() if proc.stdout else "")
        with openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as c:
            reply = c.chat.completions.create(
                model=MODEL_ALIAS, max_tokens=8,
                messages=[{"role": "user", "content": prompt}])
        bad = httpx.post(url + "/v1/chat/completions", content=b"{not json")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    lines = [line for line in out.decode().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line parses
    assert all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    access = {r["request_id"]: r for r in records if r["logger"] == "guardstack.access"}
    answered = access[reply._request_id]
    assert answered["endpoint"] == "chat.completions" and answered["status"] == 200
    assert answered["decision"] in ("allow", "flag") and answered["total_ms"] > 0
    refused = access[bad.headers["x-request-id"]]
    assert refused["status"] == 400 and "JSON" in refused["error"]
    assert not any(r["logger"] == "uvicorn.access" for r in records)
    # one start-up record says what this gateway serves
    [start] = [r for r in records if "in front of" in r["message"]]
    assert llama_server in start["message"] and "gs.db" in start["message"]
    assert "default" in start["message"] and "--open" in start["message"]
    assert prompt not in out.decode()
    assert (reply.choices[0].message.content or "").strip() not in out.decode()


@contextlib.contextmanager
def serve_replicas(tmp_path, db: str, url: str, upstream: str, *flags: str
                   ) -> Iterator[list[str]]:
    """Two ``guardstack serve`` processes on the store ``url``, as replicas:
    on PostgreSQL each runs in a folder of its own (as pods do), which holds
    its spool; on one host's SQLite file each names its own ``--spool``.
    Yields their base URLs; SIGTERMs both after, and checks they exited
    cleanly and logged no traceback."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(ALLOW_ALL)
    procs, urls, logs = [], [], []
    for n in range(2):
        home = tmp_path / f"replica{n}"
        home.mkdir()
        port = free_port()
        logs.append(home / "serve.log")
        spool = ["--spool", str(home / "spool.jsonl")] if db == "sqlite" else []
        with logs[-1].open("wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "guardstack", "serve", "--upstream", upstream,
                 "--port", str(port), "--db", url, *spool, "--policy", str(policy),
                 *flags, "--log-level", "warning"],
                stdout=log, stderr=subprocess.STDOUT, cwd=home, env={**os.environ}))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for base, proc, log_path in zip(urls, procs, logs, strict=True):
            # /healthz: /readyz says "not ready" while the upstream is down
            wait_for_http(base + "/healthz", proc, what="guardstack serve", timeout=60,
                          output=log_path.read_text)
        yield urls
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    outs = "".join(path.read_text() for path in logs)
    assert all(proc.returncode == 0 for proc in procs) and "Traceback" not in outs, outs


def _store_url(tmp_path, request, db: str) -> str:
    return request.getfixturevalue("pg_url") if db == "postgresql" \
        else f"sqlite:///{tmp_path / 'gs.db'}"


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_two_serve_processes_with_shared_rate_limits_give_a_user_the_limit_once(
        tmp_path, request, db):
    """Two replicas of ``guardstack serve --shared-rate-limits`` on one store:
    a user's second request is refused by whichever replica gets it. The
    upstream is a closed port: an admitted request fails upstream with 502."""
    body = {"model": "m", "user": "ann", "messages": [{"role": "user", "content": "Hello"}]}
    with serve_replicas(tmp_path, db, _store_url(tmp_path, request, db),
                        f"http://127.0.0.1:{free_port()}/v1", "--open", "--rate-limit", "0.01",
                        "--rate-burst", "1", "--shared-rate-limits") as urls:
        codes = [httpx.post(base + "/v1/chat/completions", json=body, timeout=30).status_code
                 for base in urls]
        other = httpx.post(urls[1] + "/v1/chat/completions", json={**body, "user": "ben"},
                           timeout=30).status_code
    assert codes == [502, 429]
    assert other == 502


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_two_serve_processes_with_shared_responses_continue_each_others(
        tmp_path, request, db):
    """Two replicas of ``guardstack serve --shared-responses``: a Responses API
    answer from one is continued with ``previous_response_id`` on the other,
    which sends the whole conversation upstream."""
    forwarded: list[dict] = []
    with serve_app(listing_upstream(forwarded)) as upstream, \
            serve_replicas(tmp_path, db, _store_url(tmp_path, request, db), upstream + "/v1",
                           "--open", "--shared-responses") as urls:
        def create(base: str, user: str = "ada", **body) -> openai.types.responses.Response:
            with openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0) as c:
                return c.responses.create(model="m", user=user, **body)

        first = create(urls[0], input="My name is Ada.")
        second = create(urls[1], input="What is my name?", previous_response_id=first.id)
        with pytest.raises(openai.NotFoundError):  # another user's
            create(urls[1], "bob", input="Hi.", previous_response_id=first.id)
    assert second.output_text == "From the other."
    assert [m["content"] for m in forwarded[1]["messages"]] == [
        "My name is Ada.", "From the other.", "What is my name?"]
