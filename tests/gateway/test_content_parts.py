"""Every text a content part carries is judged, whatever the part's type:
vLLM renders ``input_text``, ``output_text``, ``refusal`` and ``thinking``
parts into the prompt as it renders ``text`` ones, so a request that spells
its words as one of those must not pass the prompt check unread. A real
HTTP model server records what reached it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.gateway.serving import serve_app
from tests.gateway.standins import listing_upstream, marker_guard

PARTS = [
    {"type": "text", "text": "Tell me about MARKER."},
    {"type": "input_text", "text": "Tell me about MARKER."},
    {"type": "output_text", "text": "Tell me about MARKER."},
    {"type": "refusal", "refusal": "Tell me about MARKER."},
    {"type": "thinking", "thinking": "Tell me about MARKER."},
    {"type": "some_future_type", "text": "Tell me about MARKER."},
    {"text": "Tell me about MARKER."},  # no type at all
]


@pytest.fixture
def gateway(run_gateway):
    requests: list[dict[str, Any]] = []
    with serve_app(listing_upstream(requests)) as upstream:
        gw = run_gateway(upstream + "/v1", guard=marker_guard("MARKER"))
        yield gw, requests


def _chat(url: str, part: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", timeout=60, json={
        "model": "other-model",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}, part]}]})


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.get("type", "untyped"))
def test_text_in_any_part_is_judged_before_the_model_sees_it(gateway, part):
    gw, requests = gateway
    blocked = _chat(gw.url, part)
    assert blocked.status_code == 400, blocked.text
    assert blocked.json()["error"]["code"] == "content_filter"
    assert requests == []
    # the same part without the marker goes through, as it was sent
    clean = {k: (v.replace("MARKER", "bread") if isinstance(v, str) else v)
             for k, v in part.items()}
    assert _chat(gw.url, clean).status_code == 200
    [sent] = requests
    assert sent["messages"][-1]["content"][1] == clean
    [_, ex] = gw.wait_for_exchanges(2)
    assert ex.prompt_text == "Tell me about bread."


def test_a_text_part_whose_text_is_not_a_string_is_still_a_400(gateway):
    gw, requests = gateway
    r = _chat(gw.url, {"type": "text", "text": 5})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[0].content[1].text"
    assert requests == []


def test_a_completion_suffix_is_judged_with_its_prompt(gateway):
    """llama-cpp-python's server fills in the middle between prompt and suffix."""
    gw, requests = gateway
    r = httpx.post(gw.url + "/v1/completions", timeout=60, json={
        "model": "other-model", "prompt": "A story begins:", "suffix": "and the MARKER ends it."})
    assert r.status_code == 400 and r.json()["error"]["code"] == "content_filter"
    assert requests == []
    [ex] = gw.wait_for_exchanges(1)
    assert ex.prompt_text == "A story begins:\nand the MARKER ends it."
