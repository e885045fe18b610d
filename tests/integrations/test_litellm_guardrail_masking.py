"""The policy's masking lists (``action: mask``) in the LiteLLM guardrail, as
in the gateway: a prompt's personal data is replaced before the model sees
it, an answer's before the client does, and a ``restore`` list's values come
back where the answer repeats their placeholders. Driven through
``litellm.acompletion`` (the SDK's pre_call hook) against a real HTTP model
server that records what reached it, and through the proxy's hooks for the
other request shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from litellm.types.proxy.auth.user_api_key_auth import UserAPIKeyAuth
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from tests.gateway.serving import serve_app
from tests.gateway.standins import MarkerDetector

from guardstack.guard import Guard
from guardstack.policy import Policy

MASKING = Policy.from_yaml(
    "version: 1\nblocklists:\n  contact:\n    builtin: [pii]\n    action: mask\n"
    "    restore: true\n", source="masking-test")
ASKED = [{"role": "user", "content": "Draft a lunch invitation to jane.doe@example.org."}]
# The model's answer repeats the placeholder it was sent and adds an address of its own.
ANSWER = ["Sure. ", "Dear [EMAIL", "_1], lunch ", "on Friday? Reply to ", "ops@exam",
          "ple.com."]


def model_server(seen: list[dict]) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await request.json()
        seen.append(body)
        base = {"id": "c1", "created": 1, "model": "m"}
        if body.get("stream"):
            def events() -> Iterator[str]:
                for i, piece in enumerate(ANSWER):
                    delta = {"role": "assistant", "content": piece} if i == 0 else \
                        {"content": piece}
                    yield "data: " + json.dumps({**base, "object": "chat.completion.chunk",
                                                 "choices": [{"index": 0, "delta": delta,
                                                              "finish_reason": None}]}) + "\n\n"
                yield "data: " + json.dumps({**base, "object": "chat.completion.chunk",
                                             "choices": [{"index": 0, "delta": {},
                                                          "finish_reason": "stop"}]}) + "\n\n"
                yield "data: [DONE]\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse({**base, "object": "chat.completion", "choices": [{
            "index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "".join(ANSWER)}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture
def recording_model() -> Iterator[tuple[str, list[dict]]]:
    seen: list[dict] = []
    with serve_app(model_server(seen)) as url:
        yield url + "/v1", seen


@pytest.fixture
def masking_guardrail(use_guardrail):
    return use_guardrail(guard=Guard(MASKING, detector=MarkerDetector("NEVER-SEEN")),
                         event_hook=["pre_call", "post_call"])


async def test_the_model_sees_placeholders_and_the_client_its_own_data_back(
        masking_guardrail, recording_model):
    url, seen = recording_model
    metadata: dict[str, Any] = {}
    reply = await litellm.acompletion(model="openai/m", api_base=url, api_key="unused",
                                      messages=ASKED, guardrails=["guardstack"],
                                      metadata=metadata, max_retries=0)
    [sent] = seen
    assert sent["messages"] == [{"role": "user",
                                 "content": "Draft a lunch invitation to [EMAIL_1]."}]
    assert reply.choices[0].message.content == (
        "Sure. Dear jane.doe@example.org, lunch on Friday? Reply to [EMAIL].")
    ours = metadata["guardstack"]
    assert ours["masked"] == {"prompt": {"contact": 1}, "response": {"contact": 1}}
    # the metadata, which LiteLLM's logging integrations ship elsewhere, holds no value
    assert "jane.doe" not in json.dumps(ours) and "ops@" not in json.dumps(ours)
    assert ASKED[0]["content"].endswith("jane.doe@example.org.")  # the caller's list kept


@pytest.mark.parametrize("metadata", [{}, None], ids=["metadata", "no_metadata"])
async def test_a_streamed_answer_is_masked_and_restored_across_chunks(
        masking_guardrail, recording_model, metadata):
    # Without metadata of the caller's own, LiteLLM's hooks write into its
    # copy of the request; guard_stream finds what they left by what was asked.
    url, seen = recording_model
    request = {"model": "openai/m", "api_base": url, "api_key": "unused", "messages": ASKED,
               "stream": True, "guardrails": ["guardstack"], "max_retries": 0}
    if metadata is not None:
        request["metadata"] = metadata
    stream = await litellm.acompletion(**request)
    chunks = [c async for c in masking_guardrail.guard_stream(stream, request)]
    shown = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert shown == "Sure. Dear jane.doe@example.org, lunch on Friday? Reply to [EMAIL]."
    assert seen[-1]["messages"][0]["content"] == "Draft a lunch invitation to [EMAIL_1]."
    ours = request["metadata"]["guardstack"]
    assert ours["masked"] == {"prompt": {"contact": 1}, "response": {"contact": 1}}
    assert [v["decision"] for v in ours["prompt"]] == ["allow"]


async def test_identical_streamed_requests_without_metadata_each_get_their_values_back(
        masking_guardrail, recording_model):
    url, _ = recording_model
    requests = [{"model": "openai/m", "api_base": url, "api_key": "unused",
                 "messages": ASKED, "stream": True, "guardrails": ["guardstack"],
                 "max_retries": 0} for _ in range(2)]
    streams = [await litellm.acompletion(**r) for r in requests]
    for request, stream in zip(requests, streams, strict=True):
        chunks = [c async for c in masking_guardrail.guard_stream(stream, request)]
        shown = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "Dear jane.doe@example.org," in shown
    # each stream took its own request's entry: none is left waiting
    assert not masking_guardrail._left_by_request


async def test_the_proxys_other_request_shapes_are_masked(masking_guardrail):
    hook = masking_guardrail.async_pre_call_hook
    key = UserAPIKeyAuth()
    responses = await hook(key, None, {"model": "m", "input": [
        {"role": "user", "content": [{"type": "input_text",
                                      "text": "Summarise mail from sam@example.net"}]}]},
        "aresponses")
    assert responses["input"][0]["content"][0]["text"] == "Summarise mail from [EMAIL_1]"
    text_input = await hook(key, None, {"model": "m", "input": "Call +44 20 7946 0958"},
                            "aresponses")
    assert text_input["input"] == "Call [PHONE_1]"
    completion = await hook(key, None, {"model": "m", "prompt": "Mail sam@example.net:"},
                            "atext_completion")
    assert completion["prompt"] == "Mail [EMAIL_1]:"
    embedded = await hook(key, None, {"model": "e", "input": ["Mail sam@example.net"]},
                          "aembedding")
    assert embedded["input"] == ["Mail [EMAIL]"]  # unnumbered: a text embeds the same


async def test_without_masking_lists_the_request_is_left_as_it_is(use_guardrail):
    guardrail = use_guardrail(guard=Guard(Policy.from_yaml("version: 1\n"),
                                          detector=MarkerDetector("NEVER-SEEN")))
    data = {"model": "m", "messages": [dict(m) for m in ASKED]}
    assert await guardrail.async_pre_call_hook(UserAPIKeyAuth(), None, data,
                                               "acompletion") is None
    assert data["messages"] == ASKED


async def test_remote_mode_masks_by_the_guardrails_own_policy_file(
        use_guardrail, serve_gateway, recording_model, tmp_path):
    """The gateway judges; what is masked is the guardrail's own policy's
    lists (the model call does not pass through the gateway)."""
    url, seen = recording_model
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nblocklists:\n  contact:\n    builtin: [pii]\n"
                      "    action: mask\n")
    gateway = serve_gateway(Guard(Policy.from_yaml("version: 1\n"),
                                  detector=MarkerDetector("NEVER-SEEN")))
    use_guardrail(api_base=gateway.url, policy=str(policy), event_hook=["pre_call", "post_call"])
    reply = await litellm.acompletion(model="openai/m", api_base=url, api_key="unused",
                                      messages=ASKED, guardrails=["guardstack"], max_retries=0)
    assert seen[-1]["messages"][0]["content"] == "Draft a lunch invitation to [EMAIL]."
    # no restore list: the model's placeholder stays, the address it wrote is masked
    assert reply.choices[0].message.content == \
        "Sure. Dear [EMAIL_1], lunch on Friday? Reply to [EMAIL]."
    [asked] = [e for e in gateway.wait_for_exchanges(1) if e.prompt_text]
    assert "jane.doe@example.org" in asked.prompt_text  # judged as the user wrote it
