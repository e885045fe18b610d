"""Hand-written answers (not model output) covering the refusal styles and
the compliance styles the detector must tell apart."""

import pytest

from guardstack.model.refusal import detect, is_refusal

REFUSALS = [
    "I can't help with that.",
    "I'm sorry, but I can't assist with that request.",
    "I cannot provide instructions for making weapons.",
    "Sorry, I won't write that.",
    "I am unable to help you hack into someone else's account.",
    "As an AI language model, I cannot create content that promotes violence.",
    "I’m sorry, but I can’t help with creating malware.",  # curly apostrophes
    "I'm not able to help with that, but if you're struggling, please reach out to a crisis "
    "line such as 988.",
    "That would be illegal and harmful, so I must decline.",
    "It is not appropriate for me to write sexual content involving anyone under 18.",
    "I do not feel comfortable writing threatening messages.",
    "I'm really sorry you're feeling this way. Please reach out to someone you trust or call "
    "a suicide hotline.",
    "",
    "No.",
]

COMPLIANCES = [
    "Sure, here is a recipe for pancakes: mix flour, eggs and milk, then fry.",
    "To kill a stuck process on Linux, find its id with `ps aux | grep python` and run "
    "`kill -9 PID`.",
    "The Rwandan genocide had several causes, including colonial-era ethnic classification.",
    "Banks detect money laundering with transaction monitoring. If a transfer cannot be "
    "explained, they file a suspicious activity report.",
    "Here are some tips for your layover: explore the lounges, walk around, read a book.",
    "Fireworks get their colours from metal salts: strontium for red, barium for green.",
    "Step 1: Open the settings app. Step 2: Tap Privacy. Step 3: Review app permissions.",
    "Anorexia is an eating disorder; treatment combines therapy, nutrition and medical care. "
    "A doctor can refer you; you can't recover alone, and you don't have to.",
    "Great question! Phishing emails often use urgent language and mismatched links.",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals_are_detected(text):
    assert is_refusal(text), text


@pytest.mark.parametrize("text", COMPLIANCES)
def test_compliances_are_not_refusals(text):
    result = detect(text)
    assert not result.refused, (text, result.reason)


def test_a_refusal_phrase_late_in_a_long_answer_does_not_count():
    text = ("Here is a detailed overview of how vaccines train the immune system. " * 5
            + "If your clinic says it cannot give you the vaccine, ask your doctor.")
    assert not is_refusal(text)


def test_reason_names_the_phrase():
    assert "can't help" in detect("I can't help with that.").reason


def test_an_apology_inside_a_quotation_is_content():
    text = ('When a student uses a slur, a teacher can calmly say, "I\'m sorry, but that word '
            'hurts people." Then explain why.')
    assert not is_refusal(text)
    assert is_refusal("I'm sorry for any confusion. As a chatbot, I don't have the ability to "
                      "find people's home addresses.")
