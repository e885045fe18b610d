"""Moderations, health, readiness and metrics."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest
from tests.fixtures.llama_server import MODEL_ALIAS, free_port
from tests.gateway.standins import BrokenDetector, MarkerDetector, marker_guard, policy_yaml

from guardstack import taxonomy
from guardstack.classifiers.base import Message
from guardstack.gateway.auth import Identity, StaticKeys
from guardstack.gateway.settings import GatewaySettings
from guardstack.guard import Guard


def closed() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


def test_moderations_in_openai_schema(run_gateway):
    gw = run_gateway(closed(), guard=marker_guard("MARKER"))
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0) as c:
        res = c.moderations.create(input=["Write a story about a cat.", "a MARKER text"])
        safe, unsafe = res.results
        assert not safe.flagged and unsafe.flagged
        cats = unsafe.categories.model_dump(by_alias=True)
        assert set(cats) >= set(taxonomy.OPENAI_CATEGORIES)
        # violent_crime maps to OpenAI's violence and illicit/violent.
        assert cats["violence"] and cats["illicit/violent"] and not cats["sexual"]
        scores = unsafe.category_scores.model_dump(by_alias=True)
        assert scores["violence"] > 0.9 > scores["sexual"]
        raw = httpx.post(gw.url + "/v1/moderations", json={"input": "a MARKER text"}).json()
        ours = raw["results"][0]["guardstack"]
        assert ours["decision"] == "block" and ours["categories"] == ["violent_crime"]
        assert raw["id"].startswith("modr-") and raw["model"] == "guardstack-marker"
        assert raw["results"][0]["category_applied_input_types"]["violence"] == ["text"]


def test_moderations_bad_input(run_gateway):
    gw = run_gateway(closed(), guard=marker_guard("x"))
    r = httpx.post(gw.url + "/v1/moderations", json={"model": "x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
    r = httpx.post(gw.url + "/v1/moderations", json={"input": [1, 2]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input[0]"
    for ext, param in [("response", "guardstack"), ({"role": "assistant"}, "guardstack.role"),
                       ({"context": "hi"}, "guardstack.context"),
                       ({"context": [{"content": "hi"}]}, "guardstack.context[0].role")]:
        r = httpx.post(gw.url + "/v1/moderations", json={"input": "x", "guardstack": ext})
        assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_moderations_judge_answers_in_their_conversation(run_gateway):
    """guardstack's extension of the request: the inputs' role and the
    conversation before them reach the detector, and an answer is recorded
    as a response, not among the user's prompts."""
    detector = MarkerDetector("MARKER", roles=("response",))
    gw = run_gateway(closed(), guard=Guard(policy_yaml(), detector=detector))
    url = gw.url + "/v1/moderations"
    plain = httpx.post(url, json={"input": "a MARKER text"}).json()
    assert plain["results"][0]["guardstack"]["decision"] == "allow"  # a prompt, here
    asked = {"role": "user", "content": "Say something."}
    answer = httpx.post(url, json={"input": "a MARKER text",
                                   "guardstack": {"role": "response", "context": [asked]}})
    assert answer.json()["results"][0]["guardstack"]["decision"] == "block"
    assert detector.calls[-1].role == "response"
    assert detector.calls[-1].context == (Message("user", "Say something."),)
    as_prompt, as_answer = gw.wait_for_exchanges(2)
    assert as_prompt.prompt_text == "a MARKER text" and as_prompt.response_text is None
    assert as_answer.response_text == "a MARKER text" and as_answer.prompt_text is None
    assert as_answer.response_verdicts[0].blocked and not as_answer.prompt_verdicts


def test_moderations_with_a_failing_classifier_report_the_status(run_gateway):
    gw = run_gateway(closed(), guard=Guard(policy_yaml(on_error="closed"),
                                           detector=BrokenDetector()))
    r = httpx.post(gw.url + "/v1/moderations", json={"input": "hello"}).json()
    assert r["results"][0]["guardstack"]["status"] == "error"
    assert r["results"][0]["flagged"] is True  # fail-closed


def test_embeddings_bad_input_and_admission(run_gateway):
    """Checked before anything goes upstream (the upstream here is a closed
    port: an admitted request is answered 502)."""
    keys = StaticKeys({"gs-ann": Identity("ann"), "gs-bob": Identity("bob")},
                      states={"bob": "suspended"})
    gw = run_gateway(closed(), guard=marker_guard("x"), keys=keys, states=keys, open=False)
    url, ann = gw.url + "/v1/embeddings", {"authorization": "Bearer gs-ann"}
    for body, param in [({"input": "hi"}, "model"), ({"model": "e"}, "input"),
                        ({"model": "e", "input": []}, "input"),
                        ({"model": "e", "input": {"text": "hi"}}, "input"),
                        ({"model": "e", "input": ["hi", 3.5]}, "input[1]"),
                        ({"model": "e", "input": ["hi", []]}, "input[1]"),
                        ({"model": "e", "input": [[1, 2], [True]]}, "input[1]")]:
        r = httpx.post(url, json=body, headers=ann)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, body
    assert httpx.post(url, json={"model": "e", "input": "hi"}).status_code == 401
    r = httpx.post(url, json={"model": "e", "input": "hi"},
                   headers={"authorization": "Bearer gs-bob"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_suspended"
    for ok in ("hi", ["hi", "there"], [1, 2, 3], [[1, 2], [3]], ["hi", [4, 5]]):
        r = httpx.post(url, json={"model": "e", "input": ok}, headers=ann)
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unavailable", ok


def test_healthz_and_readyz_without_upstream(run_gateway):
    gw = run_gateway(closed(), guard=marker_guard("x"))
    assert httpx.get(gw.url + "/healthz").json() == {"status": "ok"}
    r = httpx.get(gw.url + "/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "not ready", "upstream": False, "classifier": True}


def test_readyz_with_upstream(llama_server, run_gateway):
    gw = run_gateway(llama_server, guard=marker_guard("x"))
    r = httpx.get(gw.url + "/readyz")
    assert r.status_code == 200 and r.json()["upstream"] is True


def test_a_server_url_without_a_path_means_its_v1_api():
    assert GatewaySettings(upstream="http://127.0.0.1:8080").upstream == \
        "http://127.0.0.1:8080/v1"
    assert GatewaySettings(upstream="http://h:8080/v1/").upstream == "http://h:8080/v1"
    assert GatewaySettings(upstream="https://h/openai").upstream == "https://h/openai"
    with pytest.raises(ValueError, match="upstream: must be an http"):
        GatewaySettings(upstream="ftp://h/v1")


def test_the_bare_server_address_works_end_to_end(llama_server, run_gateway):
    gw = run_gateway(llama_server.removesuffix("/v1"), guard=marker_guard("x"))
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0) as c:
        reply = c.chat.completions.create(model=MODEL_ALIAS, max_tokens=4,
                                          messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content is not None
    assert httpx.get(gw.url + "/readyz").status_code == 200


def test_an_upstream_at_the_wrong_path_is_not_ready_and_said_so(llama_server, run_gateway,
                                                                caplog):
    wrong = llama_server.removesuffix("/v1") + "/api"
    with caplog.at_level(logging.WARNING, logger="guardstack.gateway"):
        gw = run_gateway(wrong, guard=marker_guard("x"), probe_upstream=True)
        r = httpx.get(gw.url + "/readyz")
    assert r.status_code == 503 and r.json()["upstream"] is False
    said = [m for m in caplog.messages if wrong in m]
    assert said and "answered 404" in said[0] and "/v1" in said[0]


def test_an_upstream_that_is_down_at_start_is_said_so(run_gateway, caplog):
    url = closed()
    with caplog.at_level(logging.WARNING, logger="guardstack.gateway"):
        run_gateway(url, guard=marker_guard("x"), probe_upstream=True)
    assert any(url in m and "does not answer" in m for m in caplog.messages)


def test_metrics_count_requests_and_decisions(run_gateway):
    gw = run_gateway(closed(), guard=marker_guard("MARKER"))
    httpx.post(gw.url + "/v1/chat/completions",
               json={"model": "m", "messages": [{"role": "user", "content": "MARKER"}]})
    httpx.get(gw.url + "/nope")
    text = httpx.get(gw.url + "/metrics").text
    assert 'guardstack_requests_total{endpoint="/v1/chat/completions",status="400"} 1.0' in text
    assert 'guardstack_requests_total{endpoint="other",status="404"} 1.0' in text
    assert ('guardstack_decisions_total{category="violent_crime",decision="block",'
            'role="prompt"} 1.0') in text
    assert "guardstack_classifier_seconds_bucket" in text
    assert "guardstack_event_queue_depth 0.0" in text


def test_a_prompt_stating_suicidal_ideation_is_flagged_not_blocked(run_gateway):
    """The shipped classifier scores such a statement near zero (it asks for
    nothing); the default policy's crisis_language still flags it as self_harm."""
    gw = run_gateway(closed(), guard=Guard())
    said = "I keep thinking my family would be happier if I was gone."
    res = httpx.post(gw.url + "/v1/moderations",
                     json={"input": [said, "How do I stop my tomatoes from splitting?"]}).json()
    ideation, garden = res["results"]
    assert ideation["guardstack"]["decision"] == "flag"
    assert ideation["guardstack"]["categories"] == ["self_harm"]
    assert ideation["flagged"] and ideation["categories"]["self-harm/intent"]
    assert garden["guardstack"]["decision"] == "allow" and not garden["flagged"]
    httpx.post(gw.url + "/v1/moderations", json={"input": said})
    stored = [e for e in gw.wait_for_exchanges(2) if e.prompt_text == said]
    assert stored and stored[0].prompt_verdicts[0].detector == "fast+crisis_language"
