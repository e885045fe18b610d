"""Masking blocklists (``action: mask``) in the gateway, in front of a real
llama.cpp server (SmolLM2-135M-Instruct), driven by the official ``openai``
client: a prompt's personal data is replaced before the model server sees it
(the server's own token count and answer are those of the masked text), and
an answer's is replaced before the client sees it, whole or streamed."""

from __future__ import annotations

import httpx
import openai
import pytest
from tests.fixtures.llama_server import MODEL_ALIAS
from tests.gateway.serving import read_chat_stream

from guardstack.guard import Guard
from guardstack.policy import Policy

pytestmark = pytest.mark.slow


def masking_guard(roles: str) -> Guard:
    return Guard(Policy.from_yaml(
        f"version: 1\nblocklists:\n  contact:\n    builtin: [pii]\n    action: mask\n"
        f"    roles: [{roles}]\n", source="masking-test"))


def test_a_prompt_reaches_the_model_with_its_personal_data_masked(llama_server, run_gateway,
                                                                   client):
    gw = run_gateway(llama_server, guard=masking_guard("prompt"))
    written = ("My e-mail is jane.doe@example.org and my phone is +44 20 7946 0958. "
               "Say hello to me.")
    masked = "My e-mail is [EMAIL] and my phone is [PHONE]. Say hello to me."
    ask = {"model": MODEL_ALIAS, "max_tokens": 12, "temperature": 0.0, "seed": 3}
    via_gateway = client(gw.url).chat.completions.create(
        messages=[{"role": "user", "content": written}], **ask)
    direct = openai.OpenAI(base_url=llama_server, api_key="unused", max_retries=0)
    as_masked = direct.chat.completions.create(
        messages=[{"role": "user", "content": masked}], **ask)
    as_written = direct.chat.completions.create(
        messages=[{"role": "user", "content": written}], **ask)
    direct.close()
    # The server counted, and answered, the masked text: not what the user wrote.
    assert via_gateway.usage.prompt_tokens == as_masked.usage.prompt_tokens
    assert via_gateway.usage.prompt_tokens != as_written.usage.prompt_tokens
    assert via_gateway.choices[0].message.content == as_masked.choices[0].message.content
    [ex] = gw.wait_for_exchanges(1)
    assert ex.masked == {"prompt": {"contact": 2}}
    assert ex.prompt_text == masked  # the store keeps what the model was sent
    assert ex.prompt_verdicts[0].decision.value == "allow"
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'guardstack_masked_total{blocklist="contact",role="prompt"} 2.0' in metrics


def test_an_answer_reaches_the_client_with_personal_data_masked_whole_or_streamed(
        llama_server, run_gateway, client):
    gw = run_gateway(llama_server, guard=masking_guard("response"), hold_back=8, check_every=8)
    messages = [{"role": "user", "content": "What is the e-mail address in this text? "
                                            "'Contact: help.desk@example.org'"}]
    ask = {"model": MODEL_ALIAS, "max_tokens": 40, "temperature": 0.0, "seed": 5,
           "messages": messages}
    direct = openai.OpenAI(base_url=llama_server, api_key="unused", max_retries=0)
    original = direct.chat.completions.create(**ask).choices[0].message.content or ""
    direct.close()
    expected = gw.gateway.policy.mask("response", original)
    if not expected.counts:
        pytest.fail(f"the model wrote no e-mail address; nothing to mask: {original!r}")
    whole = client(gw.url).chat.completions.create(**ask).choices[0].message.content
    assert whole == expected.text and "@" not in whole
    shown, finishes = read_chat_stream(client(gw.url).chat.completions.create(stream=True, **ask))
    assert shown == expected.text and finishes in (["stop"], ["length"])
    assert "@" not in shown and "[EMAIL]" in shown
    first, second = gw.wait_for_exchanges(2)
    for ex in (first, second):
        assert ex.masked == {"response": expected.counts}
        assert ex.response_text == expected.text


def test_a_completions_prompt_and_an_ollama_chat_are_masked_too(llama_server, run_gateway,
                                                                 client):
    gw = run_gateway(llama_server, guard=masking_guard("prompt"))
    written = "Card 4111 1111 1111 1111 was charged twice."
    masked = "Card [CARD] was charged twice."
    ask = {"model": MODEL_ALIAS, "max_tokens": 4, "temperature": 0.0}
    via_gateway = client(gw.url).completions.create(prompt=written, **ask)
    direct = openai.OpenAI(base_url=llama_server, api_key="unused", max_retries=0)
    as_masked = direct.completions.create(prompt=masked, **ask)
    as_written = direct.completions.create(prompt=written, **ask)
    direct.close()
    assert via_gateway.usage.prompt_tokens == as_masked.usage.prompt_tokens \
        != as_written.usage.prompt_tokens
    # Ollama's chat API, over the same path as OpenAI's chat.
    reply = httpx.post(gw.url + "/api/chat", timeout=600, json={
        "model": MODEL_ALIAS, "stream": False, "options": {"num_predict": 4, "temperature": 0},
        "messages": [{"role": "user", "content": written}]}).json()
    ollama_masked = direct_chat_prompt_tokens(llama_server, masked)
    assert reply["prompt_eval_count"] == ollama_masked
    exchanges = gw.wait_for_exchanges(2)
    assert [ex.masked for ex in exchanges] == [{"prompt": {"contact": 1}}] * 2
    assert all(ex.prompt_text == masked for ex in exchanges)


def direct_chat_prompt_tokens(url: str, text: str) -> int:
    direct = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    try:
        return direct.chat.completions.create(
            model=MODEL_ALIAS, max_tokens=1, messages=[{"role": "user", "content": text}]
        ).usage.prompt_tokens
    finally:
        direct.close()


def test_the_event_store_keeps_the_masked_text_and_the_counts(llama_server, tmp_path):
    import sqlalchemy as sa
    from tests.gateway.serving import serve_app

    from guardstack.gateway.app import create_app
    from guardstack.gateway.settings import GatewaySettings
    from guardstack.gateway.store_adapter import StoreRecorder
    from guardstack.store import EventWriter, Store
    from guardstack.store.schema import exchanges, messages

    url = f"sqlite:///{tmp_path / 'events.db'}"
    app = create_app(GatewaySettings(upstream=llama_server, open=True, rate_limit=0),
                     guard=masking_guard("prompt, response"),
                     recorder=StoreRecorder(EventWriter(url, spool_path=tmp_path / "spool")))
    with serve_app(app) as gw, openai.OpenAI(base_url=gw + "/v1", api_key="k",
                                             max_retries=0) as c:
        c.chat.completions.create(model=MODEL_ALIAS, max_tokens=8, messages=[
            {"role": "user", "content": "Please reply to jane.doe@example.org today."}])
    store = Store(url)
    with store.engine.connect() as conn:
        [row] = conn.execute(sa.select(exchanges)).mappings().all()
        stored = conn.execute(sa.select(messages.c.role, messages.c.content)).all()
    store.dispose()
    assert row["extra"]["masked"]["prompt"] == {"contact": 1}
    assert ("user", "Please reply to [EMAIL] today.") in stored
    assert not any("jane.doe" in content for _, content in stored)


def test_streamed_answers_are_masked_on_the_anthropic_and_responses_apis(
        llama_server, run_gateway, client, anthropic_client):
    """Both are written from the checked chat chunks: a masked chunk reads
    the same in every wire format."""
    gw = run_gateway(llama_server, guard=masking_guard("response"), hold_back=8, check_every=8)
    question = "What is the e-mail address in this text? 'Contact: help.desk@example.org'"
    direct = openai.OpenAI(base_url=llama_server, api_key="unused", max_retries=0)
    original = direct.chat.completions.create(
        model=MODEL_ALIAS, max_tokens=40, temperature=0.0, seed=5,
        messages=[{"role": "user", "content": question}]).choices[0].message.content or ""
    direct.close()
    expected = gw.gateway.policy.mask("response", original)
    if not expected.counts:
        pytest.fail(f"the model wrote no e-mail address; nothing to mask: {original!r}")
    with anthropic_client(gw.url, api_key="unused").messages.stream(
            model=MODEL_ALIAS, max_tokens=40, extra_body={"temperature": 0.0},
            messages=[{"role": "user", "content": question}]) as stream:
        anthropic_text = "".join(stream.text_stream)
    events = client(gw.url).responses.create(model=MODEL_ALIAS, input=question, stream=True,
                                             max_output_tokens=40, temperature=0.0)
    responses_text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    for shown in (anthropic_text, responses_text):
        assert "@" not in shown and "[EMAIL]" in shown
    assert gw.wait_for_exchanges(2)[0].masked == {"response": expected.counts}


def test_restore_gives_the_user_their_own_data_back_which_the_model_never_saw(
        llama_server, run_gateway, client):
    guard = Guard(Policy.from_yaml(
        "version: 1\nblocklists:\n  contact:\n    builtin: [pii]\n    action: mask\n"
        "    roles: [prompt]\n    restore: true\n", source="restore-test"))
    gw = run_gateway(llama_server, guard=guard, hold_back=8, check_every=8)
    question = "What is the e-mail address in this text? 'Contact: {}'"
    ask = {"model": MODEL_ALIAS, "max_tokens": 40, "temperature": 0.0, "seed": 5}
    direct = openai.OpenAI(base_url=llama_server, api_key="unused", max_retries=0)
    seen = direct.chat.completions.create(
        messages=[{"role": "user", "content": question.format("[EMAIL_1]")}], **ask
    ).choices[0].message.content or ""
    direct.close()
    if "[EMAIL_1]" not in seen:
        pytest.fail(f"the model did not repeat the placeholder; nothing to restore: {seen!r}")
    expected = seen.replace("[EMAIL_1]", "help.desk@example.org")
    messages = [{"role": "user", "content": question.format("help.desk@example.org")}]
    whole = client(gw.url).chat.completions.create(messages=messages, **ask)
    assert whole.choices[0].message.content == expected
    shown, _ = read_chat_stream(client(gw.url).chat.completions.create(
        messages=messages, stream=True, **ask))
    assert shown == expected
    for ex in gw.wait_for_exchanges(2):
        # The model was sent, and the store keeps, the placeholder.
        assert ex.prompt_text == question.format("[EMAIL_1]")
        assert ex.response_text == seen and "help.desk" not in ex.response_text
        assert ex.masked == {"prompt": {"contact": 1}}


def test_embedding_inputs_reach_the_model_server_masked(llama_embedding_server, run_gateway,
                                                        client):
    """The vectors that come back are the server's for the masked texts, not
    for what the client wrote. (Ollama's /api/embed goes the same way: its
    test records the body, since this server pools no single-text embedding.)"""
    gw = run_gateway(llama_embedding_server, guard=masking_guard("prompt"))
    written = ["Invoices go to jane.doe@example.org", "What do mitochondria do?"]
    masked = ["Invoices go to [EMAIL]", "What do mitochondria do?"]
    direct = client(llama_embedding_server.removesuffix("/v1"))
    as_masked = [d.embedding for d in direct.embeddings.create(model=MODEL_ALIAS,
                                                               input=masked).data]
    as_written = [d.embedding for d in direct.embeddings.create(model=MODEL_ALIAS,
                                                                input=written).data]
    assert as_masked[0] != as_written[0]  # the server tells the two texts apart
    via = client(gw.url).embeddings.create(model=MODEL_ALIAS, input=written)
    assert [d.embedding for d in via.data] == as_masked
    [ex] = gw.wait_for_exchanges(1)
    assert ex.masked == {"prompt": {"contact": 1}}
    assert ex.prompt_text is None  # still not stored
