"""The guardrail applies ``response.clean_prompt_threshold`` as the gateway
does: the prompt check's verdicts (in the request's metadata) say whether the
prompt was clean, and an answer to a clean prompt is halted only from that
score. In remote mode the gateway's policy decides, told through
``guardstack.prompt_clean``. The stand-in ``ScoreDetector`` fixes each text's
score (``MIDDLING`` 0.7)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import litellm
import pytest
from litellm.types.proxy.auth.user_api_key_auth import UserAPIKeyAuth
from litellm.types.utils import Choices, Message, ModelResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from tests.gateway.serving import serve_app
from tests.gateway.standins import TWO_TIER_POLICY, ScoreDetector
from tests.integrations.test_litellm_guardrail_stream import finish_reasons, reasoning_stream

from guardstack.guard import Guard
from guardstack.integrations.litellm_guardrail import ContentFilterError
from guardstack.policy import Policy

MODES = ["in_process", "remote"]
ANSWER = "The vaccine trains the immune system, MIDDLING detail."


def two_tier_guard() -> Guard:
    return Guard(Policy.from_yaml(TWO_TIER_POLICY), detector=ScoreDetector())


@pytest.fixture
def guardrail(use_guardrail, serve_gateway, tmp_path):
    def make(mode: str, **kw):
        if mode == "remote":
            gateway = serve_gateway(two_tier_guard())
            path = tmp_path / "policy.yaml"
            path.write_text(TWO_TIER_POLICY)
            return use_guardrail(api_base=gateway.url, policy=str(path), **kw)
        return use_guardrail(guard=two_tier_guard(), **kw)
    return make


def reply(text: str) -> ModelResponse:
    return ModelResponse(id="c1", model="m", choices=[Choices(
        index=0, finish_reason="stop", message=Message(content=text))])


def request(prompt: str) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": prompt}]}


@pytest.mark.parametrize("mode", MODES)
async def test_an_answer_to_a_clean_prompt_is_flagged_not_blocked(mode, guardrail):
    g = guardrail(mode)
    data = request("How does the anthrax vaccine work?")
    await g.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
    assert await g.async_post_call_success_hook(data, UserAPIKeyAuth(), reply(ANSWER)) is None
    [verdict] = data["metadata"]["guardstack"]["response"]
    assert verdict["decision"] == "flag"


@pytest.mark.parametrize("mode", MODES)
async def test_the_same_answer_to_a_flagged_or_unchecked_prompt_is_blocked(mode, guardrail):
    g = guardrail(mode)
    flagged = request("A MIDDLING question about pathogens.")
    await g.async_pre_call_hook(UserAPIKeyAuth(), None, flagged, "acompletion")
    assert flagged["metadata"]["guardstack"]["prompt"][0]["decision"] == "flag"
    with pytest.raises(ContentFilterError):
        await g.async_post_call_success_hook(flagged, UserAPIKeyAuth(), reply(ANSWER))
    # post_call alone (no prompt check ran): nothing says the prompt was clean
    unchecked = request("How does the anthrax vaccine work?")
    with pytest.raises(ContentFilterError):
        await g.async_post_call_success_hook(unchecked, UserAPIKeyAuth(), reply(ANSWER))


@pytest.mark.parametrize("prompt", ["How does the anthrax vaccine work?",
                                    "A MIDDLING question about pathogens."])
async def test_a_stream_halts_only_after_a_flagged_prompt(guardrail, prompt):
    g = guardrail("in_process", hold_back=4, check_every=4)
    data = request(prompt)
    await g.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
    words = [" The", " vaccine", " trains", " MIDDLING", " cells", " to", " respond."]
    out = [c async for c in g.guard_stream(reasoning_stream(*({"content": w} for w in words)),
                                            data)]
    expected = ["content_filter"] if "MIDDLING" in prompt else ["stop"]
    assert finish_reasons(out) == expected


def streaming_model() -> Starlette:
    async def chat(request: Request) -> Response:
        base = {"id": "c1", "created": 1, "model": "m", "object": "chat.completion.chunk"}

        def events() -> Iterator[str]:
            for word in STREAMED:
                yield "data: " + json.dumps({**base, "choices": [{
                    "index": 0, "delta": {"content": word}, "finish_reason": None}]}) + "\n\n"
            yield "data: " + json.dumps({**base, "choices": [{
                "index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n"
            yield "data: [DONE]\n\n"
        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


STREAMED = [" The", " vaccine", " trains", " MIDDLING", " cells", " to", " respond."]


@pytest.mark.parametrize("prompt", ["How does the anthrax vaccine work?",
                                    "A MIDDLING question about pathogens."])
async def test_an_sdk_stream_without_metadata_knows_whether_its_prompt_was_clean(
        guardrail, prompt):
    # The SDK's pre_call hook writes into LiteLLM's copy of the keyword
    # arguments; guard_stream, handed the caller's own, finds its verdicts.
    g = guardrail("in_process", hold_back=4, check_every=4)
    with serve_app(streaming_model()) as url:
        request = {"model": "openai/m", "api_base": url + "/v1", "api_key": "unused",
                   "messages": [{"role": "user", "content": prompt}], "stream": True,
                   "guardrails": ["guardstack"], "max_retries": 0}
        stream = await litellm.acompletion(**request)
        chunks = [c async for c in g.guard_stream(stream, request)]
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices
               and c.choices[0].finish_reason]
    assert reasons == (["content_filter"] if "MIDDLING" in prompt else ["stop"])
    assert request["metadata"]["guardstack"]["prompt"][0]["decision"] == (
        "flag" if "MIDDLING" in prompt else "allow")
