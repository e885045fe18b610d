"""First-person crisis language, and the wellbeing queue it feeds.

The statements are the kind a screening questionnaire asks about (C-SSRS,
PHQ-9 item 9), in a user's words; nothing here describes a method.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_offline_monitors import BASE, chain_scorer, history

from guardstack import crisis_language
from guardstack.offline import trajectories
from guardstack.offline.peruser import analyze_user
from guardstack.offline.settings import AnalysisSettings

IDEATION = [
    ("Lately I feel like there's no reason for me to be alive.", "passive"),
    ("I keep thinking my family would be happier if I was gone.", "passive"),
    ("I've been wishing I could go to sleep and never wake up.", "passive"),
    ("Sometimes I wish I was dead.", "passive"),
    ("Everyone would be better off without me.", "passive"),
    ("I honestly don't want to be alive anymore.", "passive"),
    ("Im so tired of living", "passive"),
    ("I don't see the point in going on anymore.", "passive"),
    ("I've been thinking about killing myself.", "active"),
    ("I feel suicidal again today.", "active"),
    ("i think im going to end it all", "active"),
]

ABOUT_SUICIDE = [
    "How can I support a friend who told me she feels suicidal?",
    "What are the warning signs that someone is thinking about suicide?",
    "What does the PHQ-9 ask about thoughts of being better off dead?",
    "My friend said she wants to die, what do I do?",
    "Why do people feel like others would be better off without them?",
    "I don't want to die.",
    "I don't think I want to die, I just want this week to be over.",
    "I would never want to hurt myself.",
    "How do I kill a Python process that ignores SIGTERM?",
    "I'm dying to see that movie.",
    "What is the leading cause of death for people under 30?",
    "There's no reason to go on with the project if the budget is cut.",
    "What is the point of this meeting?",
    "Why do some people feel there is no reason to live?",
]


@pytest.mark.parametrize(("text", "kind"), IDEATION)
def test_first_person_ideation_is_recognised(text, kind):
    found = crisis_language.matches(text)
    assert found, text
    assert found[0].kind == kind
    assert crisis_language.score(text, 0.8) == 0.8
    assert crisis_language.score(text, 0.0) == 0.0


@pytest.mark.parametrize("text", ABOUT_SUICIDE)
def test_talk_about_suicide_is_not_a_statement_of_ideation(text):
    assert crisis_language.matches(text) == []


def test_curly_apostrophes_and_case_do_not_matter():
    assert crisis_language.matches("I\u2019VE BEEN THINKING ABOUT KILLING MYSELF")


def _ideation_user(language: float):
    # classifier scores near zero, as the shipped model gives such statements
    texts = [t for t, _ in IDEATION[:4]]
    rows = [(float(i), t, {"self_harm": 0.02, "harm": 0.02}, 3) for i, t in enumerate(texts)]
    return history("quiet-crisis", rows), replace(BASE, crisis_language=language)


def test_stated_ideation_reaches_the_wellbeing_queue_when_the_classifier_misses_it():
    h, settings = _ideation_user(0.8)
    result = analyze_user(h, float(h.ts[-1]), settings, chain_scorer)
    assert result.at_risk and not result.malicious
    assert result.trajectory.category == "self_harm"
    assert result.trajectory.peak == pytest.approx(0.8)
    why = [e["why"] for e in result.evidence["trajectory"]]
    assert len(why) == 4 and all("passive ideation" in w for w in why)


def test_with_the_lexicon_off_the_same_user_is_missed():
    h, settings = _ideation_user(0.0)
    assert not trajectories.trajectory(h, settings).flagged


def test_one_hyperbolic_day_is_not_a_trajectory():
    rows = [(0.0, "I just want to die, this exam was a disaster", {"harm": 0.0}, 3)]
    rows += [(1.0 + i, "What's a good recipe for lentil soup?", {"harm": 0.0}, 4)
             for i in range(5)]
    h = history("exam", rows)
    t = trajectories.trajectory(h, replace(BASE, crisis_language=0.8))
    assert t.signal_sessions == 1 and not t.flagged


def test_the_setting_is_a_score():
    with pytest.raises(ValueError, match="crisis_language"):
        AnalysisSettings().with_overrides(["crisis_language=2"])
    assert AnalysisSettings().with_overrides(["crisis_language=0"]).crisis_language == 0.0
