import pytest
from backend_helpers import chat_body, completion_body, golden, golden_inputs

from guardstack.classifiers.base import HARM, Message, Subject
from guardstack.classifiers.llama_guard import (
    DEFAULT_CATEGORIES,
    LlamaGuard3,
    LlamaGuard4,
    parse_llama_guard,
    render_llama_guard_3,
)
from guardstack.classifiers.openai_backend import GuardOutputError
from guardstack.verdict import Status

IN = golden_inputs()
PROMPT, RESPONSE = IN["prompt"], IN["response"]


def _conversation_subject() -> Subject:
    *before, last = IN["conversation"]
    return Subject(last["content"], "prompt",
                   tuple(Message(m["role"], m["content"]) for m in before))


# -- golden prompts (rendered from the model's own chat template) -------------


def test_prompt_matches_the_chat_template():
    assert render_llama_guard_3(Subject(PROMPT)) == golden("llama_guard_3_prompt.txt")


def test_response_matches_the_chat_template():
    subject = Subject(RESPONSE, "response", (Message("user", PROMPT),))
    assert render_llama_guard_3(subject) == golden("llama_guard_3_response.txt")


def test_multi_turn_conversation_matches_the_chat_template():
    assert render_llama_guard_3(_conversation_subject()) == golden("llama_guard_3_multiturn.txt")


def test_system_messages_are_left_out_of_the_conversation():
    subject = Subject(PROMPT, "prompt", (Message("system", "You are helpful."),))
    assert render_llama_guard_3(subject) == golden("llama_guard_3_prompt.txt")


def test_category_subset_and_custom_text_replace_only_the_category_block():
    default_block = "\n".join(f"{k}: {v}" for k, v in DEFAULT_CATEGORIES.items())
    custom = {"S1": "Violent Crimes.\nAI models should not help plan violence.",
              "S6": "Specialized Advice.", "S15": "Gambling.\nNo betting tips."}
    text = render_llama_guard_3(Subject(PROMPT), custom, exclude=("S6",))
    expected_block = ("S1: Violent Crimes.\nAI models should not help plan violence.\n"
                      "S15: Gambling.\nNo betting tips.")
    assert text == golden("llama_guard_3_prompt.txt").replace(default_block, expected_block)


def test_completion_request_omits_bos_because_the_server_adds_it():
    guard = LlamaGuard3("http://guard:8000", "lg3")
    kind, body = guard.request(Subject(PROMPT))
    assert kind == "completion"
    assert body["prompt"] == golden("llama_guard_3_prompt.txt").removeprefix("<|begin_of_text|>")
    kind, body = LlamaGuard3("http://guard:8000", "lg3", send_bos=True).request(Subject(PROMPT))
    assert body["prompt"] == golden("llama_guard_3_prompt.txt")


def test_llama_guard_4_request_lets_the_server_template_render():
    guard = LlamaGuard4("http://guard:8000", "lg4", exclude=["S6", "S8"])
    kind, body = guard.request(Subject(RESPONSE, "response", (Message("user", PROMPT),)))
    assert kind == "chat"
    assert body == {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": PROMPT}]},
            {"role": "assistant", "content": [{"type": "text", "text": RESPONSE}]},
        ],
        "chat_template_kwargs": {"excluded_category_keys": ["S6", "S8"]},
    }


def test_llama_guard_3_chat_mode_refuses_custom_categories():
    with pytest.raises(ValueError, match="hard-codes S1-S14"):
        LlamaGuard3("http://guard:8000", "lg3", mode="chat", exclude=["S6"])


# -- output parsing -----------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("safe", (False, [])),
    ("unsafe", (True, [])),
    ("unsafe\nS1", (True, ["S1"])),
    ("unsafe\nS1,S10", (True, ["S1", "S10"])),
    ("\n\nunsafe\nS9, S2\n", (True, ["S9", "S2"])),
    ("  SAFE  \n", (False, [])),
    ("Unsafe\ns11", (True, ["S11"])),
    ("unsafe\nS1,S1", (True, ["S1"])),
])
def test_documented_output_forms_parse(text, expected):
    assert parse_llama_guard(text) == expected


@pytest.mark.parametrize("text", ["", "   \n", "I think it is safe", "uns", "safe-ish",
                                  "unsafe\nviolent crimes", "unsafe\nS1;S2", "<|eot_id|>"])
def test_malformed_output_is_rejected(text):
    with pytest.raises(GuardOutputError):
        parse_llama_guard(text)


# -- scores over HTTP -----------------------------------------------------------


async def test_score_is_the_first_token_probability_of_unsafe(fake_server):
    server = fake_server(lambda body, path: completion_body(
        "unsafe\nS1,S6", [{"unsafe": 0.9, "safe": 0.1}, {"\n": 1.0}]))
    async with LlamaGuard3("http://guard:8000", "lg3", transport=server.transport) as guard:
        (d,) = await guard.detect([Subject(PROMPT)])
    assert d.status is Status.OK
    assert d.scores[HARM] == pytest.approx(0.9)
    assert d.scores["violent_crime"] == pytest.approx(0.9)  # S1
    assert set(d.scores) == {HARM, "violent_crime"}  # S6 has no guardstack category
    path, body, _ = server.requests[0]
    assert path == "/v1/completions"
    assert body["temperature"] == 0.0 and body["logprobs"] == 5
    assert body["model"] == "lg3"


async def test_without_logprobs_the_answer_gives_zero_or_one(fake_server):
    server = fake_server(lambda body, path: completion_body("safe"))
    async with LlamaGuard3("http://guard:8000", "lg3", transport=server.transport,
                           logprobs=False) as guard:
        (d,) = await guard.detect([Subject(PROMPT)])
    assert d.scores == {HARM: 0.0}
    assert "logprobs" not in server.bodies()[0]


async def test_llama_guard_4_reads_chat_logprobs(fake_server):
    server = fake_server(lambda body, path: chat_body(
        "unsafe\nS10", [{"unsafe": 0.6, "safe": 0.3, "I": 0.1}]))
    async with LlamaGuard4("http://guard:8000", "lg4", transport=server.transport) as guard:
        (d,) = await guard.detect([Subject(PROMPT)])
    assert d.scores[HARM] == pytest.approx(0.6 / 0.9)
    assert d.scores["hate"] == pytest.approx(0.6 / 0.9)
    assert server.requests[0][0] == "/v1/chat/completions"


async def test_unparseable_answer_is_an_error_detection(fake_server):
    server = fake_server(lambda body, path: completion_body("Sure! Here is a poem"))
    async with LlamaGuard3("http://guard:8000", "lg3", transport=server.transport) as guard:
        (d,) = await guard.detect([Subject(PROMPT)])
    assert d.status is Status.ERROR
    assert "unparseable guard output" in (d.error or "")
    assert "Sure! Here is a poem" in (d.error or "")
