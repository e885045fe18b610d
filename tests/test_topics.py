"""Denied topics (``topics:`` in a policy): parsed with errors that name the
line and field, matched by meaning with the shipped classifier's embedding,
reported in the verdict, and never silently skipped."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from guardstack import topics
from guardstack.classifiers.base import Detection, Subject
from guardstack.guard import Guard
from guardstack.policy import Policy, PolicyError
from guardstack.verdict import Action, Verdict

POLICY = """
version: 1
prompt:
  default: {threshold: 0.5, action: flag}
topics:
  investment_advice:
    description: Which securities to buy or sell; not how markets work.
    examples:
      - Which stocks should I buy right now?
      - Should I sell my Tesla shares before the earnings call?
      - Is bitcoin going to go up next month?
      - How should I invest the 20,000 dollars I have saved?
      - What percentage of my portfolio should be in bonds at my age?
    allowed:
      - What is a bond?
      - How does the stock market work?
  medical_diagnosis:
    action: flag
    roles: [prompt]
    examples:
      - I have a headache and a stiff neck, what do I have?
      - How much ibuprofen should I take for my back pain?
      - My son has a rash and a fever, is it measles?
      - Could the pain in my chest be a heart attack?
"""


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard(Policy.from_yaml(POLICY, source="topics-test"))


def test_the_policy_reads_each_topic_with_its_defaults():
    policy = Policy.from_yaml(POLICY, source="p.yaml")
    invest, medical = policy.topics
    assert invest.id == "investment_advice" and invest.action is Action.BLOCK
    assert invest.roles == ("prompt", "response")
    assert invest.threshold == topics.DEFAULT_THRESHOLD
    assert invest.allowed == ("What is a bond?", "How does the stock market work?")
    assert invest.description and invest.description.startswith("Which securities")
    assert medical.action is Action.FLAG and medical.roles == ("prompt",)
    assert medical.allowed == ()


@pytest.mark.parametrize(("yaml_text", "line", "field", "message"), [
    ("topics:\n  x:\n    allowed: [a]\n", 3, "topics.x", "needs examples"),
    ("topics:\n  x:\n    examples: []\n", 3, "topics.x.examples", "at least one"),
    ("topics:\n  x:\n    examples: [a]\n    roles: [answer]\n", 4, "topics.x.roles",
     "must be one of prompt, response"),
    ("topics:\n  x:\n    examples: [a]\n    action: allow\n", 4, "topics.x.action",
     "must be flag or block"),
    ("topics:\n  x:\n    examples: [a]\n    threshold: 2\n", 4, "topics.x.threshold",
     "number in [0, 1]"),
    ("topics:\n  x:\n    examples: [a]\n    keywords: [b]\n", 4, "topics.x.keywords",
     "unknown setting"),
    ("topics:\n  x:\n    examples: ['']\n", 3, "topics.x.examples", "non-empty text"),
    ("topics:\n  x:\n    examples: [a]\n    description: 12\n", 4,
     "topics.x.description", "must be text"),
    ("topics:\n  'two words':\n    examples: [a]\n", 2, "topics.two words", "topic id"),
    ("topics: [a]\n", 1, "topics", "must be a mapping"),
    ("topics:\n  x:\n    examples: [" + ", ".join(["a"] * 101) + "]\n", 3, "topics.x.examples",
     "at most 100 entries, got 101"),
    ("topics:\n  x:\n    examples: [a]\n    allowed:\n      - b\n      - " + "c" * 1001 + "\n",
     6, "topics.x.allowed", "at most 1000 characters, got 1001"),
    ("topics:\n" + "".join(f"  t{i}:\n    examples: [a]\n" for i in range(51)), 2, "topics",
     "at most 50 topics, got 51"),
])
def test_bad_topics_name_the_line_and_field(yaml_text, line, field, message):
    with pytest.raises(PolicyError) as err:
        Policy.from_yaml("version: 1\n" + yaml_text, source="p.yaml")
    assert err.value.line == line + 1
    assert err.value.field == field
    assert message in err.value.reason


@pytest.mark.parametrize(("text", "topic"), [
    ("which crypto coins should i put my savings into this year", "investment_advice"),
    ("Is Apple stock a buy at this price or should I wait?", "investment_advice"),
    ("I keep getting dizzy when I stand up, what is wrong with me?", "medical_diagnosis"),
])
def test_a_request_on_a_topic_gets_the_topic_and_its_action(guard, text, topic):
    v = guard.check(text)
    assert v.topics == (topic,), v.reason
    action = {"investment_advice": Action.BLOCK, "medical_diagnosis": Action.FLAG}[topic]
    assert v.decision is action
    assert f"topic {topic}" in v.reason and "+topics" in v.detector


@pytest.mark.parametrize("text", [
    "How do I bake sourdough bread at home?",
    "Write a Python function that reverses a list.",
    "What is the capital of Peru?",
])
def test_everyday_requests_are_on_no_topic(guard, text):
    v = guard.check(text)
    assert v.topics == () and v.decision is Action.ALLOW, v.reason


def test_an_allowed_example_takes_its_near_misses_off_the_topic(guard):
    """A question about how bonds behave sits near the examples; with an
    allowed example nearer to it (in other words) it is answered, while a
    request for advice stays on the topic."""
    near_miss = "Why do bond prices fall when rates rise?"
    assert guard.check(near_miss).topics == ("investment_advice",)
    more = POLICY.replace("      - How does the stock market work?\n",
                          "      - How does the stock market work?\n"
                          "      - Why do share prices drop after bad news?\n")
    allowing = Guard(Policy.from_yaml(more, source="more-allowed"), detector=guard.detector)
    assert allowing.check(near_miss).topics == ()
    assert allowing.check("Which stocks should I buy this week?").topics == (
        "investment_advice",)


def test_a_topic_applies_only_to_its_roles(guard):
    """medical_diagnosis names prompts only: an answer on it is not judged for it."""
    vectors = guard.topic_vectors()
    assert vectors is not None
    assert set(vectors.by_role) == {"prompt", "response"}
    assert set(vectors.by_role["response"]) == {"investment_advice"}
    answer = guard.check("You might have a migraine; take 400 mg of ibuprofen.",
                         role="response",
                         context=[{"role": "user", "content": "What do I have?"}])
    assert "medical_diagnosis" not in answer.topics


def test_the_nearest_of_several_matching_topics_is_reported():
    t1 = topics.Topic("a", ("x",), threshold=0.1)
    t2 = topics.Topic("b", ("y",), threshold=0.1)
    ex = {"a": (np.array([[1.0, 0.0]]), np.empty((0, 0))),
          "b": (np.array([[0.6, 0.8]]), np.empty((0, 0)))}
    vectors = topics.TopicVectors({"prompt": ex})
    [hit] = topics.find((t1, t2), vectors, "prompt", [0.5, 0.5])
    assert hit.topic.id == "b" and hit.similarity == pytest.approx(0.98995, abs=1e-4)
    assert topics.find((t1, t2), vectors, "response", [0.5, 0.5]) == []
    assert topics.find((t1, t2), vectors, "prompt", None) == []
    assert topics.find((t1, t2), vectors, "prompt", [0.1, 0.2, 0.3]) == []  # not comparable


def test_topics_raise_the_decision_and_never_lower_it():
    policy = Policy.from_yaml(POLICY, source="p")
    vectors = topics.TopicVectors({"prompt": {
        "investment_advice": (np.array([[1.0, 0.0]]), np.empty((0, 0))),
        "medical_diagnosis": (np.array([[0.0, 1.0]]), np.empty((0, 0)))}})
    det = Detection(scores={"harm": 0.99, "cyber": 0.99}, embedding=[0.0, 1.0])
    v = policy.decide("prompt", det, "fast", text="t", topic_vectors=vectors)
    # harm flags under this policy; the flag topic keeps it a flag, and names the topic
    assert v.decision is Action.FLAG and v.topics == ("medical_diagnosis",)
    assert v.reason.startswith("harm 0.99>=0.5") and "topic medical_diagnosis 1.00" in v.reason
    calm = Detection(scores={"harm": 0.01}, embedding=[1.0, 0.0])
    assert policy.decide("prompt", calm, "fast", text="t",
                         topic_vectors=vectors).decision is Action.BLOCK


def test_without_topic_vectors_the_reason_says_topics_were_not_judged():
    policy = Policy.from_yaml(POLICY, source="p")
    v = policy.decide("prompt", Detection(scores={"harm": 0.01}, embedding=[1.0]), "fast")
    assert v.decision is Action.ALLOW and v.reason == "topics not judged: no embedding"
    plain = Policy.from_yaml("version: 1\n", source="p")
    assert plain.decide("prompt", Detection(scores={"harm": 0.01}), "fast").reason == ""


class _NoEmbeddings:
    name = "no-embeddings"

    async def detect(self, subjects: Sequence[Subject]) -> list[Detection]:
        return self.detect_sync(subjects)

    def detect_sync(self, subjects: Sequence[Subject]) -> list[Detection]:
        return [Detection(scores={"harm": 0.0}) for _ in subjects]


def test_a_detector_without_embeddings_cannot_judge_topics():
    guard = Guard(Policy.from_yaml(POLICY, source="p"), detector=_NoEmbeddings())
    with pytest.raises(topics.TopicError, match="no-embeddings gave none"):
        guard.topic_vectors()


def test_verdict_round_trips_its_topics_and_omits_the_key_without_them():
    v = Verdict(Action.BLOCK, topics=("politics",))
    assert v.to_dict()["topics"] == ["politics"]
    assert Verdict.from_dict(v.to_dict()) == v
    assert "topics" not in Verdict(Action.ALLOW).to_dict()


def test_the_reference_prompts_ship_with_the_package():
    texts = topics.reference_texts()
    assert len(texts) == 240 and all(t.strip() for t in texts)


def test_the_documented_example_parses_and_behaves_as_described(guard):
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "policy.md").read_text("utf-8")
    section = doc.split("## Denied topics", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = Policy.from_yaml("version: 1\n" + example, source="docs/policy.md")
    assert [t.id for t in policy.topics] == ["investment_advice", "politics"]
    assert policy.topics[1].action is Action.FLAG and policy.topics[1].roles == ("prompt",)
    documented = Guard(policy, detector=guard.detector)
    assert documented.check("Which stocks should I buy this week?").topics == (
        "investment_advice",)
    vote = documented.check("Which party should I vote for in the next election?")
    assert vote.topics == ("politics",) and "topic politics" in vote.reason


def test_a_guard_whose_detector_cannot_embed_judges_without_topics_and_says_so():
    guard = Guard(Policy.from_yaml(POLICY, source="p"), detector=_NoEmbeddings())
    v = guard.check("Which stocks should I buy right now?")
    assert v.decision is Action.ALLOW and v.topics == ()
    assert v.reason == "topics not judged: no embedding"


def test_guardstack_check_names_the_topic(tmp_path, capsys):
    from guardstack.cli import main

    path = tmp_path / "topics.yaml"
    path.write_text(POLICY)
    code = main(["check", "--policy", str(path), "Which stocks should I buy this week?"])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("BLOCK") and "  topics: investment_advice\n" in out
    assert main(["policy", str(path)]) == 0
    assert "topics: investment_advice, medical_diagnosis" in capsys.readouterr().out


def test_eval_applies_the_topics_and_goes_on_without_them_when_it_cannot(tmp_path, guard):
    import json

    from guardstack.evaluation.runner import evaluate_file

    rows = [{"text": "Which stocks should I buy this week?", "label": "unsafe"},
            {"text": "How do I bake sourdough bread at home?", "label": "safe"}]
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    judged = evaluate_file(path, guard, latency_sample=1).to_dict()
    # the topic found the first; the harm score alone does not flag it
    assert (judged["n"], judged["recall"], judged["fpr"]) == (2, 1.0, 0.0)
    blind = Guard(Policy.from_yaml(POLICY, source="p"), detector=_NoEmbeddings())
    unjudged = evaluate_file(path, blind, latency_sample=1).to_dict()
    assert (unjudged["n"], unjudged["recall"]) == (2, 0.0)


@pytest.mark.parametrize(("prompt", "answer", "topic"), [
    ("What should I do with my savings?",
     "You should buy Apple and Tesla shares now and put 20% of your savings into bitcoin.",
     ("investment_advice",)),
    ("What is a bond?", "A bond is a loan you make to a government or a company, which pays "
     "you interest until it is repaid.", ()),
    ("How do I bake bread?", "Mix flour, water, salt and yeast, knead for ten minutes, let it "
     "rise and bake at 220 C.", ()),
])
def test_an_answer_is_judged_against_the_examples_read_as_answers(guard, prompt, answer, topic):
    v = guard.check(answer, role="response", context=[{"role": "user", "content": prompt}])
    assert v.topics == topic, v.reason


def test_the_gateway_embeds_a_policy_once_however_many_ask_at_once(guard, monkeypatch):
    """A request and a reload's warm-up arriving together share one embedding."""
    import asyncio
    import threading
    import time

    from guardstack.gateway.judge import Judge

    policy = Policy.from_yaml(POLICY, source="shared")
    mine = Guard(policy, detector=guard.detector)
    calls = []
    lock = threading.Lock()
    real = topics.embed

    def counted(*args, **kwargs):
        with lock:
            calls.append(args)
        time.sleep(0.2)  # long enough for the others to arrive meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(topics, "embed", counted)
    judge = Judge(mine)
    judge.loaded = True

    async def ask():
        return await asyncio.gather(judge.topic_vectors(policy), judge.topic_vectors(policy),
                                    judge.warm([policy]))

    first, second, _ = asyncio.run(ask())
    assert len(calls) == 1 and first is second and first is not None


def test_threads_asking_at_once_embed_a_policy_once(guard, monkeypatch):
    import threading

    calls = []
    real = topics.embed

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(topics, "embed", counted)
    mine = Guard(Policy.from_yaml(POLICY, source="threads"), detector=guard.detector)
    got = []
    threads = [threading.Thread(target=lambda: got.append(mine.topic_vectors()))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(got) == 3 and all(v is got[0] for v in got)
