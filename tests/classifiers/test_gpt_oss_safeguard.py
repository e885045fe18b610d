import pytest
from backend_helpers import chat_body, golden_inputs

from guardstack.classifiers.base import HARM, Message, Subject
from guardstack.classifiers.gpt_oss_safeguard import (
    OUTPUT_INSTRUCTIONS,
    GptOssSafeguard,
    SafeguardVerdict,
    parse_safeguard,
    render_content,
)
from guardstack.classifiers.openai_backend import GuardOutputError
from guardstack.taxonomy import BY_ID, CATEGORY_IDS
from guardstack.verdict import Status

IN = golden_inputs()
PROMPT, RESPONSE = IN["prompt"], IN["response"]


def test_policy_is_the_taxonomy_with_the_output_format_last():
    g = GptOssSafeguard("http://guard:8000", "oss")
    policy = g.policy("prompt")
    for cid in CATEGORY_IDS:
        cat = BY_ID[cid]
        assert f"### {cid}: {cat.name}\nViolates: {cat.covers}\nDoes not violate: " \
               f"{cat.excludes}" in policy
    assert policy.endswith(OUTPUT_INSTRUCTIONS)
    assert "a message a user sent to an AI assistant" in policy
    assert "the last message an AI assistant wrote" in g.policy("response")


def test_policy_file_drops_categories_the_policy_allows(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nresponse:\n  categories:\n    jailbreak: {action: allow}\n"
                    "    privacy: {action: allow}\n", encoding="utf-8")
    g = GptOssSafeguard("http://guard:8000", "oss", policy_file=path)
    assert "### jailbreak:" in g.policy("prompt")
    assert "### jailbreak:" not in g.policy("response")
    assert "### privacy:" not in g.policy("response")
    assert "### cbrn:" in g.policy("response")


def test_user_policy_text_gets_the_output_format_unless_it_defines_one(tmp_path):
    g = GptOssSafeguard("http://guard:8000", "oss", policy_text="# No spam\nSpam violates.")
    assert g.policy("prompt") == "# No spam\nSpam violates.\n\n" + OUTPUT_INSTRUCTIONS
    f = tmp_path / "policy.md"
    f.write_text('Answer {"violation": 0|1, "categories": []}.', encoding="utf-8")
    g = GptOssSafeguard("http://guard:8000", "oss", policy_text=f"@{f}")
    assert g.policy("response") == 'Answer {"violation": 0|1, "categories": []}.'


def test_request_puts_the_policy_in_the_system_message():
    g = GptOssSafeguard("http://guard:8000", "oss", categories="cbrn,cyber")
    subject = Subject(RESPONSE, "response", (Message("user", PROMPT),))
    assert g.messages(subject) == [
        {"role": "system", "content": g.policy("response")},
        {"role": "user", "content": f"[user]\n{PROMPT}\n\n[assistant - classify this message]"
                                    f"\n{RESPONSE}"}]
    assert "### cyber:" in g.policy("prompt") and "### hate:" not in g.policy("prompt")
    assert render_content(Subject(PROMPT)) == PROMPT


@pytest.mark.parametrize(("text", "expected"), [
    ('{"violation": 0, "categories": [], "rationale": "Safety question."}',
     SafeguardVerdict(False, (), "Safety question.")),
    ('{"violation": 1, "categories": ["cyber"], "rationale": "Malware."}',
     SafeguardVerdict(True, ("cyber",), "Malware.")),
    ('```json\n{"violation": true, "categories": ["Cyber-offense", "bogus"]}\n```',
     SafeguardVerdict(True, ("cyber",), "")),
    ('Here you go: {"violation": "1", "categories": "hate"} done',
     SafeguardVerdict(True, ("hate",), "")),
    ('  {"violation":0}  ', SafeguardVerdict(False, (), "")),
])
def test_output_forms_parse(text, expected):
    assert parse_safeguard(text) == expected


@pytest.mark.parametrize("text", [
    "", "   ", "VIOLATION", '{"violation": 2}', '{"categories": ["cyber"]}',
    '{"violation": 1, "categories": {"cyber": true}}', '{"violation": 1, "categ',
    '{"violation": "yes"}', '{"violation": 0.5}',
])
def test_malformed_output_is_rejected(text):
    with pytest.raises(GuardOutputError):
        parse_safeguard(text)


async def test_scores_and_request_body(fake_server):
    server = fake_server(lambda b, p: chat_body(
        '{"violation": 1, "categories": ["weapons"], "rationale": "x"}'))
    async with GptOssSafeguard("http://guard:8000", "oss", transport=server.transport,
                               reasoning_effort="medium") as g:
        (d,) = await g.detect([Subject(PROMPT)])
    assert d.status is Status.OK and d.scores == {HARM: 1.0, "weapons": 1.0}
    body = server.bodies()[0]
    assert body["reasoning_effort"] == "medium" and body["max_tokens"] == 1024
    assert body["messages"][0]["role"] == "system"


async def test_violation_digit_logprob_is_the_score(fake_server):
    text = '{"violation": 0, "categories": [], "rationale": "fine"}'
    top = [{'{"': 1.0}, {"violation": 1.0}, {'":': 1.0}, {" ": 1.0}, {"0": 0.8, "1": 0.2}]
    server = fake_server(lambda b, p: chat_body(text, top))
    async with GptOssSafeguard("http://guard:8000", "oss", transport=server.transport) as g:
        (d,) = await g.detect([Subject(PROMPT)])
    assert d.scores == pytest.approx({HARM: 0.2})


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown category"):
        GptOssSafeguard("http://guard:8000", "oss", categories=["spam"])
    with pytest.raises(ValueError, match="reasoning_effort"):
        GptOssSafeguard("http://guard:8000", "oss", reasoning_effort="max")
