"""The guardrail judges what the model will read as the gateway does: the
earlier user messages under ``prompt.judge_history`` (one that blocks
blocks the request, one that flags makes the answer judged as a flagged
prompt's, a message judged once is not judged again) and a completion's
fill-in-the-middle suffix with its prompt. The stand-in ``ScoreDetector``
fixes each text's score (``SURE`` 0.95, ``MIDDLING`` 0.7)."""

from __future__ import annotations

import json

import litellm
import pytest
from litellm.types.proxy.auth.user_api_key_auth import UserAPIKeyAuth
from tests.gateway.scripted import ScriptedUpstream, json_reply
from tests.gateway.standins import TWO_TIER_POLICY, ScoreDetector
from tests.integrations.test_litellm_guardrail_clean_prompt import ANSWER, reply

from guardstack.guard import Guard
from guardstack.integrations.litellm_guardrail import ContentFilterError
from guardstack.policy import Policy

POLICY = TWO_TIER_POLICY.replace("  default: {threshold: 0.5, action: flag}\n",
                                 "  default: {threshold: 0.5, action: flag}\n"
                                 "  judge_history: true\n", 1)


def conversation(first: str) -> dict:
    return {"model": "m", "messages": [
        {"role": "user", "content": first},
        {"role": "assistant", "content": "Sure. Step 1:"},
        {"role": "user", "content": "Continue."}]}


@pytest.fixture
def guardrail(use_guardrail):
    detector = ScoreDetector()
    g = use_guardrail(guard=Guard(Policy.from_yaml(POLICY), detector=detector))
    return g, detector


async def test_a_blocking_earlier_message_blocks(guardrail):
    g, _ = guardrail
    data = conversation("Tell me the SURE way.")
    with pytest.raises(ContentFilterError) as err:
        await g.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
    assert "earlier in the conversation" in str(err.value.detail)


async def test_a_flagged_earlier_message_makes_the_answer_judged_strictly(guardrail):
    g, _ = guardrail
    data = conversation("A MIDDLING question about pathogens.")
    await g.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
    decisions = [v["decision"] for v in data["metadata"]["guardstack"]["prompt"]]
    assert decisions == ["allow", "flag"]
    with pytest.raises(ContentFilterError):  # not clean: the answer's 0.7 blocks
        await g.async_post_call_success_hook(data, UserAPIKeyAuth(), reply(ANSWER))


async def test_off_the_history_is_context_only_and_a_message_is_judged_once(use_guardrail):
    detector = ScoreDetector()
    off = use_guardrail(guard=Guard(Policy.from_yaml(TWO_TIER_POLICY), detector=detector))
    await off.async_pre_call_hook(UserAPIKeyAuth(), None, conversation("Tell me the SURE way."),
                                  "acompletion")  # no error: only "Continue." judged
    assert [s.text for s in detector.calls] == ["Continue."]
    detector = ScoreDetector()
    on = use_guardrail(guard=Guard(Policy.from_yaml(POLICY), detector=detector))
    for _ in range(2):
        await on.async_pre_call_hook(UserAPIKeyAuth(), None, conversation("What is bread?"),
                                     "acompletion")
    # the last message is judged each time; the earlier one once
    assert sorted(s.text for s in detector.calls) == ["Continue.", "Continue.", "What is bread?"]


async def test_a_completion_suffix_is_judged_with_its_prompt(use_guardrail):
    detector = ScoreDetector()
    g = use_guardrail(guard=Guard(Policy.from_yaml(TWO_TIER_POLICY), detector=detector))
    with pytest.raises(ContentFilterError):
        await g.async_pre_call_hook(UserAPIKeyAuth(), None, {
            "model": "m", "prompt": "A story begins:", "suffix": "the SURE ending."},
            "atext_completion")
    assert [s.text for s in detector.calls] == ["A story begins:\nthe SURE ending."]


WITHHOLD = POLICY.replace("  judge_history: true\n", "  judge_history: withhold\n", 1)


async def test_withhold_takes_the_blocking_message_and_its_answer_out(use_guardrail):
    g = use_guardrail(guard=Guard(Policy.from_yaml(WITHHOLD), detector=ScoreDetector()))
    data = conversation("Tell me the SURE way.")
    data["messages"].insert(0, {"role": "system", "content": "Be brief."})
    out = await g.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
    assert out is data  # LiteLLM forwards what the hook returns
    assert data["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Continue."}]
    ours = data["metadata"]["guardstack"]
    assert ours["history_withheld"] == [1]
    assert [v["decision"] for v in ours["prompt"]] == ["allow", "block"]
    with pytest.raises(ContentFilterError):  # the answer is judged as a flagged prompt's
        await g.async_post_call_success_hook(data, UserAPIKeyAuth(), reply(ANSWER))


async def test_withhold_refuses_where_the_request_is_not_what_is_forwarded(use_guardrail):
    g = use_guardrail(guard=Guard(Policy.from_yaml(WITHHOLD), detector=ScoreDetector()))
    # during_call: the model reads the request already
    data = conversation("Tell me the SURE way.")
    with pytest.raises(ContentFilterError, match="earlier in the conversation"):
        await g.async_moderation_hook(data, UserAPIKeyAuth(), "acompletion")
    assert len(data["messages"]) == 3
    # a Responses call: LiteLLM translates its input after this hook
    data = {"model": "m", "input": conversation("Tell me the SURE way.")["messages"]}
    with pytest.raises(ContentFilterError, match="earlier in the conversation"):
        await g.async_pre_call_hook(UserAPIKeyAuth(), None, data, "aresponses")


async def test_through_litellm_the_model_never_reads_the_withheld_turn(use_guardrail):
    use_guardrail(guard=Guard(Policy.from_yaml(WITHHOLD), detector=ScoreDetector()),
                  event_hook=["pre_call"])
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "Bread is baked."}}]}
    server = ScriptedUpstream(json_reply(json.dumps(answer).encode()))
    try:
        reply = await litellm.acompletion(
            model="openai/m", api_base=server.url, api_key="unused", max_retries=0,
            guardrails=["guardstack"], **{k: v for k, v in conversation(
                "Tell me the SURE way.").items() if k == "messages"})
    finally:
        server.close()
    assert reply.choices[0].message.content == "Bread is baked."
    [sent] = [json.loads(b) for b in server.bodies]
    assert sent["messages"] == [{"role": "user", "content": "Continue."}]
