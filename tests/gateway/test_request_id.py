"""Every answer names its exchange: ``x-request-id`` (the official openai
client's ``_request_id``) and ``request-id`` (Anthropic's client), the id
the event store keeps, on answers, streams and errors alike; in front of
the real llama.cpp server (SmolLM2-135M-Instruct)."""

from __future__ import annotations

import httpx
import openai
import pytest
from tests.fixtures.llama_server import MODEL_ALIAS
from tests.gateway.standins import marker_guard

pytestmark = pytest.mark.slow


def test_answers_streams_and_errors_carry_the_exchange_id(llama_server, run_gateway, client,
                                                          anthropic_client):
    gw = run_gateway(llama_server, guard=marker_guard("BLOCKME"))
    c = client(gw.url)
    ask = {"model": MODEL_ALIAS, "max_tokens": 4}
    answer = c.chat.completions.create(messages=[{"role": "user", "content": "Hi"}], **ask)
    with c.chat.completions.with_streaming_response.create(
            messages=[{"role": "user", "content": "Hi"}], stream=True, **ask) as streamed:
        streamed_id = streamed.headers["x-request-id"]
        for _ in streamed.iter_lines():
            pass
    with pytest.raises(openai.BadRequestError) as blocked:
        c.chat.completions.create(messages=[{"role": "user", "content": "BLOCKME"}], **ask)
    message = anthropic_client(gw.url).messages.create(
        model=MODEL_ALIAS, max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    ollama = httpx.post(gw.url + "/api/chat", json={"model": MODEL_ALIAS, "stream": False,
                                                    "messages": "not a list"})
    exchanges = gw.wait_for_exchanges(5)
    ids = [answer._request_id, streamed_id, blocked.value.request_id, message._request_id,
           ollama.headers["x-request-id"]]
    assert ids == [ex.id for ex in exchanges]
    assert len(set(ids)) == 5
    assert [ex.status_code for ex in exchanges] == [200, 200, 400, 200, 400]
