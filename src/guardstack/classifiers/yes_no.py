"""Yes/No guard answers (ShieldGemma, Granite Guardian): P(Yes) from the
first token's log-probabilities, else from the answer's first word."""

from __future__ import annotations

import re

from guardstack.classifiers.openai_backend import (
    Completion,
    GuardOutputError,
    first_label_token,
    label_probability,
)

_FIRST_WORD = re.compile(r"^\W*([A-Za-z]+)")
# Granite Guardian 3.3 may answer "<score> yes </score>" (after its reasoning).
_SCORE_TAG = re.compile(r"<score>\s*(yes|no)\s*</score>", re.IGNORECASE)


def parse_yes_no(text: str) -> bool:
    """True for an answer starting with Yes, False for No (any case, leading
    whitespace or punctuation); :class:`GuardOutputError` otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise GuardOutputError("empty answer")
    tag = _SCORE_TAG.search(text)
    if tag is not None:
        return tag.group(1).lower() == "yes"
    m = _FIRST_WORD.match(text)
    word = m.group(1).lower() if m else ""
    if word == "yes":
        return True
    if word == "no":
        return False
    raise GuardOutputError(f"answer must start with 'Yes' or 'No', got {text.strip()[:60]!r}")


def yes_probability(completion: Completion) -> float:
    """P(Yes) from log-probabilities, else from the answer's first word."""
    tok = first_label_token(completion, ("yes", "no"))
    if tok is not None:
        p = label_probability(tok.top, ("yes",), ("no",))
        if p is not None:
            # The text must still be a documented answer: a server that
            # returns logprobs for garbage is not a verdict.
            parse_yes_no(completion.text)
            return p
    return 1.0 if parse_yes_no(completion.text) else 0.0
