import pytest
from backend_helpers import completion_body, golden, golden_inputs

from guardstack.classifiers.base import HARM, Message, Subject
from guardstack.classifiers.granite_guardian import (
    RISK_BANK,
    GraniteGuardian,
    render_granite_guardian,
)
from guardstack.verdict import Status

IN = golden_inputs()
PROMPT, RESPONSE = IN["prompt"], IN["response"]


def test_prompt_matches_the_chat_template():
    text = render_granite_guardian(Subject(PROMPT), RISK_BANK["harm"][0])
    assert text == golden("granite_guardian_prompt_harm.txt")


def test_response_matches_the_chat_template():
    subject = Subject(RESPONSE, "response", (Message("user", PROMPT),))
    assert render_granite_guardian(subject, RISK_BANK["jailbreak"][1]) == golden(
        "granite_guardian_response_jailbreak.txt")


def test_the_backend_picks_the_role_specific_definition():
    g = GraniteGuardian("http://guard:8000", "gg", risks=["jailbreak"])
    subject = Subject(RESPONSE, "response", (Message("user", PROMPT),))
    assert g.prompts(subject) == {"jailbreak": golden("granite_guardian_response_jailbreak.txt")}


async def test_one_call_per_risk_and_p_yes(fake_server):
    p_yes = {"common-sense": 0.3, "systemic prejudice": 0.7, "circumvention": 0.1}

    def reply(body, path):
        p = next(v for k, v in p_yes.items() if k in body["prompt"])
        return completion_body("Yes" if p > 0.5 else "No", [{"Yes": p, "No": 1 - p}])

    server = fake_server(reply)
    async with GraniteGuardian("http://guard:8000", "gg", transport=server.transport,
                               risks="harm,social_bias,jailbreak") as g:
        (d,) = await g.detect([Subject(PROMPT)])
    assert d.status is Status.OK and len(server.requests) == 3
    assert d.scores == pytest.approx({HARM: 0.7, "hate": 0.7, "jailbreak": 0.1})


async def test_custom_risk_definition(fake_server):
    server = fake_server(lambda b, p: completion_body("No", [{"No": 0.95, "Yes": 0.05}]))
    async with GraniteGuardian(
            "http://guard:8000", "gg", transport=server.transport, risks=["gambling"],
            custom_risks={"gambling": {"definition": "The 'User' message seeks betting tips.",
                                       "categories": ["nonviolent_crime"]}}) as g:
        (d,) = await g.detect([Subject(PROMPT)])
    assert "* The 'User' message seeks betting tips.\n" in server.bodies()[0]["prompt"]
    assert d.scores == pytest.approx({HARM: 0.05, "nonviolent_crime": 0.05})


async def test_garbage_answer_is_an_error(fake_server):
    server = fake_server(lambda b, p: completion_body("I cannot determine that."))
    async with GraniteGuardian("http://guard:8000", "gg", transport=server.transport) as g:
        (d,) = await g.detect([Subject(PROMPT)])
    assert d.status is Status.ERROR and "unparseable" in (d.error or "")


def test_invalid_risks_are_clear_errors():
    with pytest.raises(ValueError, match="unknown Granite Guardian risk"):
        GraniteGuardian("http://guard:8000", "gg", risks=["groundedness"])
    with pytest.raises(ValueError, match="overwrite"):
        GraniteGuardian("http://guard:8000", "gg", custom_risks={"harm": "x"})
