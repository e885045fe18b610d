import random

import pytest

from guardstack.simulate.scenarios import Topic
from guardstack.simulate.scenarios.adversarial import (
    CAMPAIGNS,
    CHAINS,
    CRESCENDOS,
    CRISIS_FILLERS,
    CRISIS_STAGES,
    DELUSION_FILLERS,
    DELUSION_STAGES,
    JAILBREAK_FILLERS,
    JAILBREAK_WRAPPERS,
)
from guardstack.simulate.scenarios.ordinary import GENERIC_FOLLOWUPS, ORDINARY_TOPICS
from guardstack.simulate.scenarios.professional import PROFESSIONAL_TOPICS
from guardstack.simulate.templates import TemplateError, bind, expand, slots
from guardstack.taxonomy import CATEGORY_IDS


def test_expand_fills_slots_and_inline_alternatives():
    rng = random.Random(1)
    seen = {expand("{a|b} {x}", rng, {"x": ["one", "two"]}) for _ in range(200)}
    assert seen == {"A one", "A two", "B one", "B two"}


def test_expand_is_deterministic_for_a_seeded_rng():
    fillers = {"x": [str(i) for i in range(50)]}
    first = [expand("{x} {x} {p|q|r}", random.Random(5), fillers) for _ in range(3)]
    again = [expand("{x} {x} {p|q|r}", random.Random(5), fillers) for _ in range(3)]
    assert first == again


def test_expand_tidies_optional_words():
    assert expand("Can you {|please }help ?", random.Random(0)) in (
        "Can you help?", "Can you please help?")


def test_unknown_filler_is_a_clear_error():
    with pytest.raises(TemplateError, match=r"unknown filler \{nope\}"):
        expand("Hello {nope}", random.Random(0), {})


def test_self_referencing_filler_stops():
    with pytest.raises(TemplateError, match="still unexpanded"):
        expand("{loop}", random.Random(0), {"loop": ["{loop}"]})


def test_bind_fixes_one_value_per_slot():
    bound = bind({"city": ["Lisbon", "Oslo", "Quito"]}, random.Random(3))
    text = expand("{city} or {city}?", random.Random(0), bound)
    first, second = text.rstrip("?").split(" or ")
    assert first == second


def _topics() -> list[Topic]:
    return [*ORDINARY_TOPICS.values(), *PROFESSIONAL_TOPICS.values()]


@pytest.mark.parametrize("topic", _topics(), ids=lambda t: t.name)
def test_every_topic_template_names_existing_fillers(topic):
    for template in (*topic.openers, *topic.followups):
        assert slots(template) <= set(topic.fillers), template
    for template in GENERIC_FOLLOWUPS:
        assert not slots(template), template


def test_every_adversarial_template_names_existing_fillers():
    for chain in CHAINS:
        for step in chain.steps:
            for template in step:
                assert slots(template) <= set(chain.fillers), template
    for crescendo in CRESCENDOS:
        for turn in crescendo.turns:
            for template in turn:
                assert slots(template) <= set(crescendo.fillers), template
    for wrapper in JAILBREAK_WRAPPERS:
        assert slots(wrapper) <= {*JAILBREAK_FILLERS, "request", "Request"}, wrapper
        assert slots(wrapper) & {"request", "Request"}, wrapper
    for campaign in CAMPAIGNS:
        known = {*campaign.fillers, *campaign.shared, *campaign.aligned}
        for language, templates in campaign.templates.items():
            for template in templates:
                assert slots(template) <= known, template
            for translations in campaign.aligned.values():
                assert language in translations
        lengths = {len(t) for t in campaign.templates.values()}
        assert len(lengths) == 1, f"{campaign.name}: languages need aligned template lists"
    for stages, fillers in ((CRISIS_STAGES, CRISIS_FILLERS), (DELUSION_STAGES, DELUSION_FILLERS)):
        for stage in stages:
            for template in stage:
                assert slots(template) <= set(fillers), template


def test_categories_are_taxonomy_ids():
    categories = {c.category for c in (*CHAINS, *CRESCENDOS, *CAMPAIGNS)}
    assert categories <= set(CATEGORY_IDS)


def test_chains_have_enough_steps_to_spread_over_three_sessions():
    for chain in CHAINS:
        assert len(chain.steps) >= 4, chain.goal
