import pytest
from backend_helpers import completion_body, golden, golden_inputs

from guardstack.classifiers.base import HARM, Message, Subject
from guardstack.classifiers.openai_backend import GuardOutputError
from guardstack.classifiers.shieldgemma import POLICIES, ShieldGemma, render_shieldgemma
from guardstack.classifiers.yes_no import parse_yes_no
from guardstack.verdict import Status

IN = golden_inputs()
PROMPT, RESPONSE = IN["prompt"], IN["response"]


def test_prompt_matches_the_model_card_template():
    text = render_shieldgemma(Subject(PROMPT), POLICIES["dangerous"])
    assert text == golden("shieldgemma_prompt_dangerous.txt")


def test_response_matches_the_model_card_template():
    subject = Subject(RESPONSE, "response", (Message("user", PROMPT),))
    assert render_shieldgemma(subject, POLICIES["harassment"]) == golden(
        "shieldgemma_response_harassment.txt")


async def test_one_call_per_policy_with_p_yes(fake_server):
    p_yes = {"Dangerous Content": 0.9, "Hate Speech": 0.05, "Sexually Explicit": 0.2,
             "Harassment": 0.4}

    def reply(body, path):
        name = next(k for k in p_yes if f'"No {k}' in body["prompt"])
        p = p_yes[name]
        return completion_body("Yes" if p >= 0.5 else "No", [{"Yes": p, "No": 1 - p}])

    server = fake_server(reply)
    async with ShieldGemma("http://guard:8000", "sg", transport=server.transport) as g:
        (d,) = await g.detect([Subject(PROMPT)])
    assert d.status is Status.OK
    assert len(server.requests) == 4
    assert {b["prompt"] for b in server.bodies()} == set(g.prompts(Subject(PROMPT)).values())
    assert all(path == "/v1/completions" for path, _, _ in server.requests)
    assert d.scores[HARM] == pytest.approx(0.9)
    assert d.scores["weapons"] == pytest.approx(0.9)
    assert d.scores["hate"] == pytest.approx(0.05)
    assert d.scores["sexual"] == pytest.approx(0.2)
    assert d.scores["harassment"] == pytest.approx(0.4)


async def test_without_logprobs_yes_no_text_gives_one_or_zero(fake_server):
    server = fake_server(lambda b, p: completion_body("No" if "Hate" in b["prompt"] else "Yes"))
    async with ShieldGemma("http://guard:8000", "sg", transport=server.transport,
                           policies="hate,harassment", logprobs=False) as g:
        (d,) = await g.detect([Subject(PROMPT)])
    assert d.scores == {HARM: 1.0, "hate": 0.0, "harassment": 1.0}


async def test_custom_policy(fake_server):
    server = fake_server(lambda b, p: completion_body("Yes", [{"Yes": 0.8, "No": 0.2}]))
    custom = {"gambling": {"title": "Gambling Tips",
                           "description": "helps someone place illegal bets.",
                           "categories": ["nonviolent_crime"]}}
    async with ShieldGemma("http://guard:8000", "sg", transport=server.transport,
                           policies=["gambling"], custom_policies=custom) as g:
        (d,) = await g.detect([Subject(PROMPT)])
    assert '* "No Gambling Tips": The prompt shall not contain or seek generation of content ' \
           "that helps someone place illegal bets." in server.bodies()[0]["prompt"]
    assert d.scores == pytest.approx({HARM: 0.8, "nonviolent_crime": 0.8})


async def test_one_failed_policy_call_fails_the_whole_text(fake_server):
    server = fake_server(lambda b, p: completion_body("Maybe" if "Hate" in b["prompt"] else "No"))
    async with ShieldGemma("http://guard:8000", "sg", transport=server.transport) as g:
        (d,) = await g.detect([Subject(PROMPT)])
    assert d.status is Status.ERROR and "Maybe" in (d.error or "")


@pytest.mark.parametrize(("text", "expected"), [
    ("Yes", True), ("No", False), (" yes, because", True), ("NO.", False),
    ("\nNo\n\nThe question asks", False), ("<score> yes </score>", True),
])
def test_yes_no_forms(text, expected):
    assert parse_yes_no(text) is expected


@pytest.mark.parametrize("text", ["", "  ", "Maybe", "Nope", "Yesterday", "It is not"])
def test_malformed_yes_no_is_rejected(text):
    with pytest.raises(GuardOutputError):
        parse_yes_no(text)


def test_unknown_policy_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown ShieldGemma policy"):
        ShieldGemma("http://guard:8000", "sg", policies=["spam"])
