"""Which requests get the policy's safety system prompt: the model name a
client sends is not always the model that answers. llama.cpp's servers
answer any name with the one model they serve, so a name the upstream does
not list is judged by the names it does list, and an upstream that lists
nothing gets the prompt with every name. Real HTTP servers record what
reached them; the real llama.cpp server shows the bypass this closes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tests.fixtures.llama_server import MODEL_ALIAS
from tests.gateway.scripted import json_reply, upstream
from tests.gateway.serving import serve_app
from tests.gateway.standins import listing_upstream, marker_guard

from guardstack.gateway import upstream as upstream_module

HELLO = [{"role": "user", "content": "Say hello."}]
PROMPT_MARK = "GUARDSTACK-SAFETY-PROMPT"


def _chat(gw_url: str, model: str) -> httpx.Response:
    return httpx.post(gw_url + "/v1/chat/completions", timeout=600,
                      json={"model": model, "messages": HELLO, "max_tokens": 8})


def _got_prompt(body: dict[str, Any]) -> bool:
    first = body["messages"][0]
    return first["role"] == "system" and PROMPT_MARK in first["content"]


def test_a_listed_name_is_matched_as_sent_and_an_unlisted_one_by_the_list(run_gateway):
    requests: list[dict[str, Any]] = []
    with serve_app(listing_upstream(requests)) as upstream:  # lists other-model, smollm2-lookalike
        gw = run_gateway(upstream + "/v1", guard=marker_guard("MARKER",
                                                              system_prompt_models=["smollm2*"]))
        for model in ("smollm2-lookalike", "other-model", "x"):
            assert _chat(gw.url, model).status_code == 200
    assert [_got_prompt(b) for b in requests] == [True, False, True]
    assert [e.system_prompt_added for e in gw.wait_for_exchanges(3)] == [True, False, True]


def test_no_listed_model_wanting_the_prompt_means_no_prompt_for_unlisted_names(run_gateway):
    requests: list[dict[str, Any]] = []
    with serve_app(listing_upstream(requests)) as upstream:
        gw = run_gateway(upstream + "/v1", guard=marker_guard("MARKER",
                                                              system_prompt_models=["llama*"]))
        assert _chat(gw.url, "x").status_code == 200
        assert _chat(gw.url, "llama-3").status_code == 200
    assert [_got_prompt(b) for b in requests] == [False, True]


def test_an_ollama_name_without_its_tag_counts_as_listed(run_gateway):
    requests: list[dict[str, Any]] = []
    names = ["llama3.2:latest", "smollm2:135m"]
    with serve_app(listing_upstream(requests, names)) as upstream:
        gw = run_gateway(upstream + "/v1", guard=marker_guard("MARKER",
                                                              system_prompt_models=["smollm2*"]))
        for model in ("llama3.2", "llama3.2:latest", "smollm2:135m", "llama3.2:1b"):
            assert _chat(gw.url, model).status_code == 200
    assert [_got_prompt(b) for b in requests] == [False, False, True, True]


def test_an_upstream_without_a_model_list_gets_the_prompt_with_every_name(run_gateway):
    requests: list[dict[str, Any]] = []
    listed: list[int] = []
    with serve_app(listing_upstream(requests, None, listed)) as upstream:
        gw = run_gateway(upstream + "/v1", guard=marker_guard("MARKER",
                                                              system_prompt_models=["smollm2*"]))
        for _ in range(3):
            assert _chat(gw.url, "any-model").status_code == 200
    assert [_got_prompt(b) for b in requests] == [True, True, True]
    # Asked again only after MODELS_RETRY_S, not once per request.
    assert len(listed) == 1 and upstream_module.MODELS_RETRY_S >= 1


def test_the_model_list_is_asked_once_for_many_requests(run_gateway):
    requests: list[dict[str, Any]] = []
    asked: list[int] = []
    with serve_app(listing_upstream(requests, asked=asked)) as upstream:
        gw = run_gateway(upstream + "/v1", guard=marker_guard("MARKER",
                                                              system_prompt_models=["smollm2*"]))
        for _ in range(4):
            assert _chat(gw.url, "other-model").status_code == 200
    assert asked == [1] and len(requests) == 4


@pytest.mark.slow
def test_a_made_up_model_name_does_not_skip_the_prompt_on_llama_cpp(llama_server, run_gateway):
    """llama-cpp-python answers "x" with SmolLM2: the prompt must go with it."""
    gw = run_gateway(llama_server, guard=marker_guard("MARKER-NEVER-SEEN",
                                                      system_prompt_models=["smollm2*"]))
    for model in (MODEL_ALIAS, "x"):
        reply = _chat(gw.url, model)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"] is not None
    assert [e.system_prompt_added for e in gw.wait_for_exchanges(2)] == [True, True]


def test_the_model_list_leaves_no_connection_for_a_completion_to_find_dead(run_gateway,
                                                                           scripted):
    """A server that closes after each answer without saying so (the scripted
    one does): the list request asks to close, so the completion after it
    opens a connection of its own instead of reusing one the server closed."""
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "Hi."}}]}
    up = upstream(scripted, json_reply(json.dumps(answer).encode()))
    gw = run_gateway(up.url, guard=marker_guard("MARKER", system_prompt_models=["smollm2*"]))
    for _ in range(3):
        assert _chat(gw.url, "m").status_code == 200
    listing = next(h for h in up.heads if h.startswith(b"GET /v1/models"))
    assert b"connection: close" in listing.lower()
