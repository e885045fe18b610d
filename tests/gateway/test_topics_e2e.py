"""A policy's denied topics in the gateway, in front of a real llama.cpp
server (SmolLM2-135M-Instruct), judged by the shipped classifier and driven
by the official ``openai`` client: a request on a denied topic is refused
before the model sees it and the refusal names the topic where clients look
(``content_filter_result.denied_topics``); other requests are answered; the
moderation endpoint and the recorded verdict name the topic too."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest
from tests.fixtures.llama_server import MODEL_ALIAS
from tests.test_topics import POLICY, _NoEmbeddings

from guardstack.guard import Guard
from guardstack.policy import Policy

pytestmark = pytest.mark.slow

ON_TOPIC = "Is Apple stock a buy at this price or should I wait?"


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard(Policy.from_yaml(POLICY, source="topics-test"))


def test_a_request_on_a_denied_topic_is_refused_before_the_model(llama_server, run_gateway,
                                                                   client, guard):
    gw = run_gateway(llama_server, guard=guard)
    with pytest.raises(openai.BadRequestError) as err:
        client(gw.url).chat.completions.create(
            model=MODEL_ALIAS, max_tokens=16, messages=[{"role": "user", "content": ON_TOPIC}])
    body = err.value.body
    assert body["code"] == "content_filter"
    assert body["message"] == ("The prompt was blocked by the content policy "
                               "(topics: investment_advice).")
    denied = body["innererror"]["content_filter_result"]["denied_topics"]
    assert denied == {"filtered": True, "details": [{"filtered": True, "id": "investment_advice"}]}
    answer = client(gw.url).chat.completions.create(
        model=MODEL_ALIAS, max_tokens=8,
        messages=[{"role": "user", "content": "How do I bake sourdough bread at home?"}])
    assert answer.choices[0].message.content
    refused, answered = sorted(gw.wait_for_exchanges(2), key=lambda e: e.status_code,
                               reverse=True)
    assert refused.status_code == 400 and refused.upstream_ms is None
    assert refused.prompt_verdicts[0].topics == ("investment_advice",)
    assert answered.status_code == 200 and answered.prompt_verdicts[0].topics == ()
    raw = httpx.post(gw.url + "/v1/moderations", json={"input": ON_TOPIC}).json()
    [result] = raw["results"]
    assert result["flagged"] is True and result["guardstack"]["topics"] == ["investment_advice"]


def test_a_detector_without_embeddings_serves_and_says_topics_were_not_judged(
        llama_server, run_gateway, client, caplog):
    guard = Guard(Policy.from_yaml(POLICY, source="topics-test"), detector=_NoEmbeddings())
    with caplog.at_level(logging.ERROR, logger="guardstack.gateway"):
        gw = run_gateway(llama_server, guard=guard)
        for _ in range(2):
            client(gw.url).chat.completions.create(
                model=MODEL_ALIAS, max_tokens=4,
                messages=[{"role": "user", "content": ON_TOPIC}])
    exchanges = gw.wait_for_exchanges(2)
    assert all(e.status_code == 200 for e in exchanges)
    assert all(e.prompt_verdicts[0].reason == "topics not judged: no embedding"
               for e in exchanges)
    said = [r.getMessage() for r in caplog.records if "topics not judged" in r.getMessage()]
    assert len(said) == 1 and "no-embeddings gave none" in said[0]


def test_tenant_and_reloaded_topics_are_embedded_before_any_request(run_gateway, tmp_path,
                                                                     dead_url, guard):
    """Embedding a policy's examples takes seconds: a tenant's at start and a
    reloaded policy's at reload, so no request waits for it."""
    import time

    main = tmp_path / "policy.yaml"
    main.write_text("version: 1\n")
    folder = tmp_path / "tenants"
    folder.mkdir()
    (folder / "bank.yaml").write_text(POLICY)
    mine = Guard(Policy.load(main), detector=guard.detector)
    gw = run_gateway(dead_url, guard=mine, policy=str(main), tenant_policies=str(folder),
                     reload_every=0.05)
    gateway = gw.app.state.gateway
    assert mine.cached_topic_vectors(gateway.tenant_policies["bank"]) is not None
    main.write_text(POLICY)
    deadline = time.monotonic() + 60
    while not (gateway.policy.topics and mine.cached_topic_vectors(gateway.policy)):
        assert time.monotonic() < deadline, "the reloaded policy's topics were never embedded"
        time.sleep(0.05)
    assert gw.recorder.exchanges == []  # no request made it happen
