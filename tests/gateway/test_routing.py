"""Several model servers behind one gateway (``--routes FILE``): the model
name a client sends picks the server. One route goes to the real llama.cpp
server (SmolLM2), the other to a small recording server (real HTTP) that
lists two models and answers chat, so the test can see which requests
reached it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from tests.fixtures.llama_server import MODEL_ALIAS, free_port
from tests.gateway.serving import serve_app
from tests.gateway.standins import listing_upstream, marker_guard

from guardstack.gateway.errors import GatewayError
from guardstack.gateway.routing import Router, RoutesError, RouteSpec, parse
from guardstack.gateway.upstream import Upstream


def routes_file(tmp_path: Path, llama: str, other: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(f"""routes:
  - model: "smollm2*"
    upstream: {llama}
  - model: "other-*"
    upstream: {other}
""")
    return path


def test_each_model_goes_to_its_server(llama_server, run_gateway, client, tmp_path):
    requests: list[dict[str, Any]] = []
    with serve_app(listing_upstream(requests)) as other:
        gw = run_gateway(None, guard=marker_guard("MARKER-NEVER-SEEN"),
                         routes=str(routes_file(tmp_path, llama_server, other + "/v1")))
        c = client(gw.url)
        real = c.chat.completions.create(
            model=MODEL_ALIAS, max_tokens=16, temperature=0.0,
            messages=[{"role": "user", "content": "Say hello."}])
        assert real.choices[0].message.content and requests == []
        routed = c.chat.completions.create(
            model="other-model", messages=[{"role": "user", "content": "Say hello."}])
        assert routed.choices[0].message.content == "From the other."
        assert [r["model"] for r in requests] == ["other-model"]
        with pytest.raises(openai.NotFoundError) as err:
            c.chat.completions.create(model="gpt-unknown",
                                      messages=[{"role": "user", "content": "Say hello."}])
        assert err.value.body["code"] == "model_not_found"
        assert "smollm2*" in err.value.body["message"] and len(requests) == 1

        # Ollama's API routes the same way.
        chat = httpx.post(gw.url + "/api/chat", json={
            "model": "other-model", "stream": False,
            "messages": [{"role": "user", "content": "Say hello."}]}, timeout=60)
        assert chat.status_code == 200 and chat.json()["message"]["content"] == "From the other."
        assert len(requests) == 2

        listed = sorted(m.id for m in c.models.list())
        assert listed == sorted([MODEL_ALIAS, "other-model"])
        assert c.models.retrieve("other-model").owned_by == "other"
        with pytest.raises(openai.NotFoundError):
            c.models.retrieve("smollm2-lookalike")   # llama.cpp serves that name, and lacks it
        ready = httpx.get(gw.url + "/readyz").json()
        assert ready["upstream"] is True
        assert ready["upstreams"] == {llama_server: True, other + "/v1": True}
        tags = httpx.get(gw.url + "/api/tags").json()
        assert sorted(m["name"] for m in tags["models"]) == sorted([MODEL_ALIAS, "other-model"])
        # The refused request is recorded, with the name it asked for.
        [ex] = [e for e in gw.wait_for_exchanges(3) if e.model == "gpt-unknown"]
        assert ex.status_code == 404


def test_a_server_that_is_down_leaves_the_list_and_readiness(llama_server, run_gateway, client,
                                                             tmp_path):
    gw = run_gateway(None, guard=marker_guard("MARKER-NEVER-SEEN"),
                     routes=str(routes_file(tmp_path, llama_server,
                                            f"http://127.0.0.1:{free_port()}/v1")))
    c = client(gw.url)
    assert [m.id for m in c.models.list()] == [MODEL_ALIAS]
    r = httpx.get(gw.url + "/readyz")
    assert r.status_code == 503 and r.json()["upstream"] is False
    with pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="other-model",
                                  messages=[{"role": "user", "content": "Say hello."}])
    assert err.value.status_code == 502
    assert err.value.body["code"] == "upstream_unavailable"


def test_names_no_route_matches_go_to_the_default_upstream(llama_server, run_gateway, client,
                                                            tmp_path):
    requests: list[dict[str, Any]] = []
    with serve_app(listing_upstream(requests)) as other:
        path = tmp_path / "routes.yaml"
        path.write_text(f"routes:\n  - model: other-model\n    upstream: {other}\n")
        gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN"), routes=str(path))
        c = client(gw.url)
        reply = c.chat.completions.create(model="anything-else", max_tokens=8,
                                          messages=[{"role": "user", "content": "Say hello."}])
        assert reply.choices[0].message.content is not None and requests == []
        c.chat.completions.create(model="other-model",
                                  messages=[{"role": "user", "content": "Say hello."}])
        assert len(requests) == 1


def test_first_matching_route_wins_and_routes_share_a_server():
    a, b = "http://a.example/v1", "http://b.example/v1"
    router = Router.build(None, [RouteSpec("llama-3*-70b", a), RouteSpec("llama-*", b),
                                 RouteSpec("qwen*", a)])
    assert router.for_model("llama-3.1-70b").base_url == a
    assert router.for_model("llama-3.1-8b").base_url == b
    assert router.for_model("qwen2.5") is router.for_model("llama-3.1-70b")
    assert len(router.upstreams) == 2
    with pytest.raises(GatewayError) as err:
        router.for_model(None)
    assert err.value.status == 404
    fallback = Router(Upstream("http://c.example/v1"))
    assert not fallback.routed and fallback.for_model("x").base_url == "http://c.example/v1"


@pytest.mark.parametrize(("text", "expected"), [
    ("routes: []\n", "<routes>:1: routes: must be a non-empty list"),
    ("models:\n  - {}\n", "<routes>:1: models: unknown setting"),
    ("routes:\n  - model: x\n", "<routes>:2: routes[0].upstream: required"),
    ("routes:\n  - model: x\n    upstream: ftp://x\n", "<routes>:3: routes[0].upstream: must be"),
    ("routes:\n  - model: x\n    upstream: http://x\n    weight: 2\n",
     "<routes>:4: routes[0].weight: unknown setting"),
    ("routes:\n  - model: x\n    upstream: http://x\n    api_key: os.environ/GS_TEST_UNSET_KEY\n",
     "<routes>:4: "),
    ("routes:\n  - [x]\n", "<routes>:2: routes[0]: must be a mapping"),
    ("routes: [\n", "<routes>:2: invalid YAML"),
])
def test_a_bad_routes_file_names_the_line(text, expected, monkeypatch):
    monkeypatch.delenv("GS_TEST_UNSET_KEY", raising=False)
    with pytest.raises(RoutesError) as err:
        parse(text)
    assert str(err.value).startswith(expected)


def test_route_keys_are_secret_references_and_urls_get_their_v1(monkeypatch):
    monkeypatch.setenv("GS_TEST_ROUTE_KEY", "sk-test")
    [spec] = parse("routes:\n  - model: x\n    upstream: http://h:8001\n"
                   "    api_key: os.environ/GS_TEST_ROUTE_KEY\n")
    assert spec == RouteSpec("x", "http://h:8001/v1", "sk-test")


@pytest.mark.parametrize(("args", "message"), [
    ([], "give the model server: --upstream URL, or --routes FILE"),
    (["--routes", "MISSING.yaml"], "cannot read routes file"),
])
def test_serve_says_what_is_missing(args, message):
    proc = subprocess.run([sys.executable, "-m", "guardstack", "serve", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_reload_reads_the_routes_again(run_gateway, client, tmp_path):
    """SIGHUP's reload: a model moves to another server without a restart;
    a file that does not load leaves the running routes."""
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    path = tmp_path / "routes.yaml"
    hello = [{"role": "user", "content": "Say hello."}]
    with serve_app(listing_upstream(first)) as a, serve_app(listing_upstream(second)) as b:
        path.write_text(f"routes:\n  - model: other-*\n    upstream: {a}\n")
        gw = run_gateway(None, guard=marker_guard("MARKER-NEVER-SEEN"), routes=str(path))
        c = client(gw.url)
        c.chat.completions.create(model="other-model", messages=hello)
        path.write_text(f"routes:\n  - model: other-*\n    upstream: {b}\n")
        assert gw.gateway.reload() is True
        c.chat.completions.create(model="other-model", messages=hello)
        path.write_text("routes:\n  - model: other-*\n")
        assert gw.gateway.reload() is False
        c.chat.completions.create(model="other-model", messages=hello)
        assert httpx.post(gw.url + "/v1/messages/count_tokens", json={
            "model": "other-model", "messages": hello}).status_code == 501  # no tokenizer there
    assert len(first) == 1 and len(second) == 2
