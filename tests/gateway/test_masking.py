"""The gateway's masking of request messages (gateway/masking.py) on its
own: which messages are read, and how restore numbers values across them."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.gateway.serving import serve_app

from guardstack.gateway import masking
from guardstack.gateway.recorder import Exchange
from guardstack.guard import Guard
from guardstack.policy import Policy

RESTORE = Policy.from_yaml("version: 1\nblocklists:\n  contact:\n    builtin: [pii]\n"
                           "    action: mask\n    restore: true\n")


def test_user_messages_and_earlier_answers_are_masked_system_and_tools_are_not():
    ex = Exchange("chat.completions")
    sent = masking.messages(RESTORE, [
        {"role": "system", "content": "Support is at help@shop.example."},
        {"role": "user", "content": "Draft a note to jane@example.org."},
        {"role": "assistant", "content": "Dear jane@example.org, lunch on Friday?"},
        {"role": "tool", "tool_call_id": "c1", "content": "CRM: sam@example.net"},
        {"role": "user", "content": [{"type": "text", "text": "Copy sam@example.net too."},
                                     {"type": "image_url", "image_url": {"url": "x"}}]},
    ], ex)
    assert [m["content"] for m in sent[:4]] == [
        "Support is at help@shop.example.", "Draft a note to [EMAIL_1].",
        "Dear [EMAIL_1], lunch on Friday?", "CRM: sam@example.net"]
    assert sent[4]["content"][0]["text"] == "Copy [EMAIL_2] too."
    assert sent[4]["content"][1] == {"type": "image_url", "image_url": {"url": "x"}}
    assert ex.restore == {"[EMAIL_1]": "jane@example.org", "[EMAIL_2]": "sam@example.net"}
    assert ex.masked == {"prompt": {"contact": 3}}


def test_an_answer_gets_the_values_back_and_a_stranger_placeholder_stays():
    ex = Exchange("chat.completions")
    masking.messages(RESTORE, [{"role": "user", "content": "Mail jane@example.org"}], ex)
    choice = {"message": {"role": "assistant", "content": "Sent to [EMAIL_1], not [EMAIL_7]."}}
    masking.answer(RESTORE, choice, "chat", ex)
    assert choice["message"]["content"] == "Sent to jane@example.org, not [EMAIL_7]."


def test_without_masking_lists_the_messages_are_the_same_objects():
    items = [{"role": "user", "content": "Mail jane@example.org"}]
    assert masking.messages(Policy.default(), items, Exchange("chat.completions")) is items


def test_a_longer_numbered_placeholder_is_not_read_as_a_shorter_one():
    ex = Exchange("chat.completions")
    for n in range(10):
        ex.numbered("<name>", f"person {n}")
    choice = {"message": {"content": "<name>_10 and <name>_1"}}
    masking.answer(RESTORE, choice, "chat", ex)
    assert choice["message"]["content"] == "person 9 and person 0"


def test_embedding_inputs_are_masked_unnumbered_and_token_ids_kept():
    ex = Exchange("embeddings")
    body = {"model": "e", "input": ["Mail jane@example.org", [101, 2023], "and sam@example.net",
                                    "jane@example.org again"]}
    sent = masking.embedding_input(RESTORE, body, ex)
    # the same text embeds the same, whatever else the request holds: no numbers
    assert sent["input"] == ["Mail [EMAIL]", [101, 2023], "and [EMAIL]", "[EMAIL] again"]
    assert body["input"][0] == "Mail jane@example.org"  # the client's body is left as it was
    assert ex.masked == {"prompt": {"contact": 3}} and ex.restore == {}
    one = masking.embedding_input(RESTORE, {"model": "e", "input": "jane@example.org"}, ex)
    assert one["input"] == "[EMAIL]"
    tokens = {"model": "e", "input": [101, 2023]}
    assert masking.embedding_input(RESTORE, tokens, ex) is tokens
    plain = {"model": "e", "input": "Mail jane@example.org"}
    assert masking.embedding_input(Policy.default(), plain, ex) is plain


def test_ollamas_embed_apis_send_the_masked_text_upstream(run_gateway, ollama_client):
    seen: list[dict] = []

    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append(body)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return JSONResponse({"object": "list", "model": body["model"], "data": [
            {"object": "embedding", "index": i, "embedding": [0.1, 0.2]}
            for i in range(len(texts))]})

    app = Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"])])
    with serve_app(app) as upstream:
        policy = "version: 1\nblocklists:\n  contact:\n    builtin: [pii]\n    action: mask\n"
        gw = run_gateway(upstream + "/v1", guard=Guard(Policy.from_yaml(policy)))
        ollama = ollama_client(gw.url)
        assert ollama.embed(model="e", input="Bill jane@example.org").embeddings == [[0.1, 0.2]]
        assert ollama.embeddings(model="e", prompt="Bill sam@example.net").embedding == [0.1,
                                                                                        0.2]
    assert [body["input"] for body in seen] == ["Bill [EMAIL]", "Bill [EMAIL]"]
    assert [ex.masked for ex in gw.wait_for_exchanges(2)] == [{"prompt": {"contact": 1}}] * 2


@pytest.mark.parametrize(("written", "restored"), [
    # Small models copy a placeholder loosely: any case, other brackets or
    # none. A longer placeholder and an unknown one stay as written.
    ("To [email_1], cc EMAIL_1 and <Email_1>; not EMAIL_10, xEMAIL_1 or [EMAIL_7].",
     "To jane@example.org, cc jane@example.org and jane@example.org; "
     "not EMAIL_10, xEMAIL_1 or [EMAIL_7]."),
    # [Email 1], (EMAIL-1), [email1]: brackets keep the number its own;
    # unbracketed "Email 1" is prose and stays, as does a longer number.
    ("To [Email 1], cc (EMAIL-1) and [email1]; not Email 1, [Email 12] or [Email 7].",
     "To jane@example.org, cc jane@example.org and jane@example.org; "
     "not Email 1, [Email 12] or [Email 7]."),
], ids=["case_and_brackets", "space_or_hyphen"])
def test_a_placeholder_written_back_loosely_is_restored(written, restored):
    ex = Exchange("chat.completions")
    masking.messages(RESTORE, [{"role": "user", "content": "Mail jane@example.org"}], ex)
    choice = {"message": {"content": written}}
    masking.answer(RESTORE, choice, "chat", ex)
    assert choice["message"]["content"] == restored
