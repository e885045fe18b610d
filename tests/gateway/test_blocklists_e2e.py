"""A policy's blocklists in the gateway, in front of a real llama.cpp server
(SmolLM2-135M-Instruct), judged by the shipped classifier and driven by the
official ``openai`` client: a listed term in a prompt is refused before the
model sees it, a listed word in an answer halts the stream before the word
reaches the client, and both say which list matched where Azure-aware
clients look (``content_filter_result.custom_blocklists``)."""

from __future__ import annotations

import re

import httpx
import openai
import pytest
from tests.fixtures.llama_server import MODEL_ALIAS
from tests.gateway.serving import read_chat_stream

from guardstack.guard import Guard
from guardstack.policy import Policy

pytestmark = pytest.mark.slow

POLICY = """
version: 1
blocklists:
  codenames:
    terms: [Project Falcon]
    roles: [prompt]
    category: privacy
  pets:
    terms: [cat, cats, kitten]
    roles: [response]
"""
PETS = re.compile(r"(?<!\w)(?:cat|cats|kitten)(?!\w)", re.IGNORECASE)


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard(Policy.from_yaml(POLICY, source="blocklists-test"))


def test_a_listed_term_in_a_prompt_is_refused_before_the_model(llama_server, run_gateway,
                                                                 client, guard):
    gw = run_gateway(llama_server, guard=guard)
    with pytest.raises(openai.BadRequestError) as err:
        client(gw.url).chat.completions.create(
            model=MODEL_ALIAS, max_tokens=16,
            messages=[{"role": "user", "content": "When does project FALCON launch?"}])
    body = err.value.body
    assert body["code"] == "content_filter" and "privacy" in body["message"]
    assert "blocklists: codenames" in body["message"]  # the message names the list
    lists = body["innererror"]["content_filter_result"]["custom_blocklists"]
    assert lists == {"filtered": True, "details": [{"filtered": True, "id": "codenames"}]}
    [ex] = gw.wait_for_exchanges(1)
    assert ex.status_code == 400 and ex.upstream_ms is None
    assert ex.prompt_verdicts[0].blocklists == ("codenames",)
    # The same text through the moderation endpoint names the list too.
    raw = httpx.post(gw.url + "/v1/moderations",
                     json={"input": "When does project FALCON launch?"}).json()
    [result] = raw["results"]
    assert result["flagged"] is True and result["guardstack"]["blocklists"] == ["codenames"]
    # Anthropic's clients read the refusal's stop_details: it names the list too.
    reply = httpx.post(gw.url + "/v1/messages", json={
        "model": MODEL_ALIAS, "max_tokens": 16,
        "messages": [{"role": "user", "content": "When does project FALCON launch?"}]}).json()
    assert reply["stop_reason"] == "refusal"
    assert "blocklists: codenames" in reply["stop_details"]["explanation"]


def test_a_listed_word_in_an_answer_halts_the_stream_before_it(llama_server, run_gateway,
                                                                client, guard):
    gw = run_gateway(llama_server, guard=guard, hold_back=8, check_every=8)
    stream = client(gw.url).chat.completions.create(
        model=MODEL_ALIAS, messages=[{"role": "user", "content": "Write a story about a cat."}],
        stream=True, temperature=0.0, seed=7, max_tokens=100)
    shown, finishes = read_chat_stream(stream)
    [ex] = gw.wait_for_exchanges(1)
    if not PETS.search(ex.response_text):
        pytest.fail(f"the model never named a cat; cannot test a halt: {ex.response_text!r}")
    # The prompt itself was allowed: the list applies to answers only.
    assert ex.prompt_verdicts[0].decision.value == "allow"
    assert finishes == ["content_filter"]
    assert not PETS.search(shown)
    assert ex.halted and ex.unsafe_tokens_released == 0
    assert any(v.blocklists == ("pets",) and v.blocked for v in ex.response_verdicts)
