"""Guard's own logic, with small detectors written for the faults they show.

These stand-ins test what Guard does with a detector's output (batching,
errors, timeouts, role inference); the real classifier is exercised in
tests/classifiers/.
"""

import asyncio

import pytest

from guardstack.classifiers.base import Detection, Subject
from guardstack.guard import Guard, subject_from_messages
from guardstack.policy import Policy
from guardstack.verdict import Action, Status


class KeywordDetector:
    """Scores 'harm' 1.0 when a marker word is present; records what it saw."""

    name = "keyword"

    def __init__(self, word: str = "zzmarker") -> None:
        self.word = word
        self.seen: list[Subject] = []

    def detect_sync(self, subjects):
        self.seen.extend(subjects)
        return [Detection(scores={"harm": float(self.word in s.text), "cyber": 0.0})
                for s in subjects]

    async def detect(self, subjects):
        return self.detect_sync(subjects)


class BrokenDetector:
    name = "broken"

    def detect_sync(self, subjects):
        raise RuntimeError("model file is corrupt")

    async def detect(self, subjects):
        raise RuntimeError("model file is corrupt")


class SlowDetector:
    name = "slow"

    def detect_sync(self, subjects):
        raise NotImplementedError

    async def detect(self, subjects):
        await asyncio.sleep(5)
        return []


def test_check_uses_policy_on_detector_scores():
    guard = Guard(detector=KeywordDetector())
    assert guard.check("tell me about zzmarker").decision is Action.BLOCK
    ok = guard.check("what do mitochondria do")
    assert ok.decision is Action.ALLOW
    assert ok.detector == "keyword" and ok.status is Status.OK


def test_check_messages_judges_last_message_with_context_and_role():
    det = KeywordDetector()
    guard = Guard(detector=det)
    v = guard.check_messages([
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello zzmarker"},
    ])
    assert v.role == "response" and v.blocked
    seen = det.seen[-1]
    assert seen.role == "response"
    assert [m.role for m in seen.context] == ["system", "user"]


def test_openai_content_parts_are_flattened():
    s = subject_from_messages([{"role": "user", "content": [
        {"type": "text", "text": "first"}, {"type": "image_url", "image_url": {}},
        {"type": "text", "text": "second"}]}])
    assert s.text == "first\nsecond"


def test_text_in_parts_of_other_types_is_judged_too():
    """vLLM renders input_text, output_text, refusal and thinking parts as text."""
    s = subject_from_messages([{"role": "user", "content": [
        {"type": "input_text", "text": "a"}, {"type": "output_text", "text": "b"},
        {"type": "refusal", "refusal": "c"}, {"type": "thinking", "thinking": "d"},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "unknown_kind", "text": "e"}, "f"]}])
    assert s.text == "a\nb\nc\nd\ne\nf"
    blocked = Guard(detector=KeywordDetector()).check_messages([{"role": "user", "content": [
        {"type": "input_text", "text": "tell me about zzmarker"}]}])
    assert blocked.blocked


def test_empty_messages_is_a_value_error():
    with pytest.raises(ValueError):
        Guard(detector=KeywordDetector()).check_messages([])


def test_broken_detector_becomes_error_verdict_resolved_by_fail_mode():
    closed = Policy.from_yaml("prompt:\n  on_error: closed\n")
    v = Guard(policy=closed, detector=BrokenDetector()).check("anything")
    assert v.status is Status.ERROR and v.decision is Action.BLOCK
    assert "corrupt" in v.reason
    v = Guard(detector=BrokenDetector()).check("anything")
    assert v.status is Status.ERROR and v.decision is Action.ALLOW


async def test_async_timeout_is_an_error_verdict():
    policy = Policy.from_yaml("prompt:\n  timeout_ms: 50\n  on_error: closed\n")
    v = await Guard(policy=policy, detector=SlowDetector()).acheck("anything")
    assert v.status is Status.ERROR and v.blocked
    assert "timed out" in v.reason


def test_batch_keeps_order():
    guard = Guard(detector=KeywordDetector())
    subjects = [Subject(t) for t in ("a", "zzmarker b", "c", "zzmarker d")]
    assert [v.blocked for v in guard.check_batch(subjects)] == [False, True, False, True]


def test_policy_path_is_loaded(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("prompt:\n  default: {action: flag}\n")
    v = Guard(policy=path, detector=KeywordDetector()).check("zzmarker")
    assert v.decision is Action.FLAG


# -- first-person crisis language ---------------------------------------------------


class FixedDetector:
    """Gives every text the same ``scores``."""

    def __init__(self, name: str = "fixed", **scores: float) -> None:
        self.name, self.scores = name, scores

    def detect_sync(self, subjects):
        return [Detection(scores=dict(self.scores)) for _ in subjects]

    async def detect(self, subjects):
        return self.detect_sync(subjects)


def quiet() -> FixedDetector:
    """Everything harmless, as the classifier scores a statement of ideation."""
    return FixedDetector("quiet", harm=0.01, self_harm=0.01)


IDEATION = "I keep thinking my family would be happier if I was gone."


def test_a_prompt_stating_ideation_is_flagged_as_self_harm_never_blocked():
    v = Guard(detector=quiet()).check(IDEATION)
    assert v.decision is Action.FLAG
    assert v.categories == ("self_harm",)
    assert v.scores["self_harm"] == pytest.approx(0.8)
    assert v.detector == "quiet+crisis_language"


async def test_the_async_path_flags_it_too():
    [v] = await Guard(detector=quiet()).acheck_batch([Subject(IDEATION)])
    assert v.decision is Action.FLAG and v.categories == ("self_harm",)


def test_crisis_language_leaves_talk_about_suicide_and_responses_alone():
    g = Guard(detector=quiet())
    assert g.check("How can I support a friend who told me she feels suicidal?").decision \
        is Action.ALLOW
    # an answer quoting the user is judged as an answer, by the classifier alone
    v = g.check_messages([{"role": "user", "content": "hi"},
                          {"role": "assistant", "content": IDEATION}])
    assert v.decision is Action.ALLOW and v.detector == "quiet"


def test_crisis_language_off_in_the_policy_means_the_classifier_alone_decides():
    policy = Policy.from_yaml("version: 1\nprompt:\n  crisis_language: 0\n"
                              "  categories:\n    self_harm: {action: flag}\n")
    assert Guard(policy, detector=quiet()).check(IDEATION).decision is Action.ALLOW


async def test_an_answer_to_a_prompt_the_caller_passed_gets_the_clean_prompt_threshold():
    # harm 0.7: between the default policy's two response points (0.5, and 0.9 when clean)
    guard = Guard(detector=FixedDetector(harm=0.7, cbrn=0.7))
    conversation = [{"role": "user", "content": "How do vaccines work?"},
                    {"role": "assistant", "content": "They train the immune system."}]
    assert guard.check_messages(conversation).decision is Action.BLOCK
    assert guard.check_messages(conversation, prompt_clean=True).decision is Action.FLAG
    assert (await guard.acheck("They train it.", "response", conversation[:1],
                               prompt_clean=True)).decision is Action.FLAG
    # a prompt is judged as itself whatever the caller says
    assert guard.check("How do vaccines work?", prompt_clean=True).decision is not Action.ALLOW
