import pytest
from backend_helpers import chat_body, golden_inputs

from guardstack.classifiers.base import HARM, Message, Subject
from guardstack.classifiers.openai_backend import GuardOutputError
from guardstack.classifiers.qwen3guard import Qwen3Guard, QwenVerdict, parse_qwen3guard
from guardstack.verdict import Status

IN = golden_inputs()
PROMPT, RESPONSE = IN["prompt"], IN["response"]


def test_requests_are_the_plain_conversation_the_readme_sends():
    # Qwen3Guard's instructions are in its chat template; the README's
    # OpenAI-compatible example sends exactly these messages.
    g = Qwen3Guard("http://guard:8000", "qwen")
    assert g.messages(Subject(PROMPT)) == [{"role": "user", "content": PROMPT}]
    assert g.messages(Subject(RESPONSE, "response", (Message("user", PROMPT),))) == [
        {"role": "user", "content": PROMPT}, {"role": "assistant", "content": RESPONSE}]


@pytest.mark.parametrize(("text", "expected"), [
    ("Safety: Safe\nCategories: None", QwenVerdict("Safe", (), None)),
    ("Safety: Unsafe\nCategories: Violent", QwenVerdict("Unsafe", ("Violent",), None)),
    ("Safety: Controversial\nCategories: Politically Sensitive Topics",
     QwenVerdict("Controversial", ("Politically Sensitive Topics",), None)),
    ("Safety: Safe\nCategories: None\nRefusal: Yes", QwenVerdict("Safe", (), True)),
    ("Safety: Unsafe\nCategories: Non-violent Illegal Acts, Jailbreak\nRefusal: No",
     QwenVerdict("Unsafe", ("Non-violent Illegal Acts", "Jailbreak"), False)),
    ("  safety:   UNSAFE \n categories: pii \n", QwenVerdict("Unsafe", ("PII",), None)),
    ("Safety: Unsafe", QwenVerdict("Unsafe", (), None)),
])
def test_documented_output_forms_parse(text, expected):
    assert parse_qwen3guard(text) == expected


@pytest.mark.parametrize("text", [
    "", "  ", "Safe", "Categories: Violent", "Safety: Maybe\nCategories: None",
    "Safety: Unsafe\nCategories: Bananas", "Safety: Safe\nRefusal: Perhaps",
    "The request is safe.",
])
def test_malformed_output_is_rejected(text):
    with pytest.raises(GuardOutputError):
        parse_qwen3guard(text)


def _probs(label_probs):
    return [{"Safety": 1.0}, {":": 1.0}, label_probs]


@pytest.mark.parametrize(("mode", "expected"), [("strict", 0.7), ("loose", 0.2)])
async def test_controversial_is_unsafe_when_strict_and_safe_when_loose(fake_server, mode,
                                                                        expected):
    server = fake_server(lambda b, p: chat_body(
        "Safety: Controversial\nCategories: Politically Sensitive Topics",
        _probs({" Controversial": 0.5, " Unsafe": 0.2, " Safe": 0.3})))
    async with Qwen3Guard("http://guard:8000", "qwen", transport=server.transport,
                          controversial=mode) as g:
        (d,) = await g.detect([Subject(PROMPT)])
    assert d.status is Status.OK
    assert d.scores[HARM] == pytest.approx(expected)
    assert d.scores["influence_ops"] == pytest.approx(expected)


@pytest.mark.parametrize(("mode", "expected"), [("strict", 1.0), ("loose", 0.0)])
async def test_without_logprobs_the_label_decides(fake_server, mode, expected):
    server = fake_server(lambda b, p: chat_body("Safety: Controversial\nCategories: None"))
    async with Qwen3Guard("http://guard:8000", "qwen", transport=server.transport,
                          controversial=mode, logprobs=False) as g:
        (d,) = await g.detect([Subject(PROMPT)])
    assert d.scores == {HARM: expected}


async def test_categories_map_to_the_taxonomy(fake_server):
    server = fake_server(lambda b, p: chat_body(
        "Safety: Unsafe\nCategories: Unethical Acts, Jailbreak\nRefusal: No"))
    async with Qwen3Guard("http://guard:8000", "qwen", transport=server.transport) as g:
        (d,) = await g.detect([Subject(RESPONSE, "response", (Message("user", PROMPT),))])
    assert d.scores == {HARM: 1.0, "hate": 1.0, "harassment": 1.0, "jailbreak": 1.0}
    assert server.requests[0][0] == "/v1/chat/completions"


def test_bad_setting_is_a_clear_error():
    with pytest.raises(ValueError, match="strict"):
        Qwen3Guard("http://guard:8000", "qwen", controversial="lenient")
