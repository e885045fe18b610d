import pytest

from guardstack.classifiers.base import Detection
from guardstack.policy import SETTINGS, Policy, PolicyError
from guardstack.taxonomy import CATEGORY_IDS
from guardstack.verdict import Action, Status


def test_default_policy_loads_and_covers_both_roles():
    p = Policy.default()
    assert p.detector == "fast"
    for role in ("prompt", "response"):
        assert p.fail_mode(role) in ("open", "closed")
    assert p.safety_system_prompt
    assert p.wants_system_prompt("SmolLM2-135M-Instruct")
    assert not p.wants_system_prompt("llama-3-8b-instruct")


@pytest.mark.parametrize(
    ("text", "line", "field", "fragment"),
    [
        ("version: 1\nprompt:\n  categories:\n    cbrn: {threshold: 1.5}\n", 4,
         "prompt.categories.cbrn.threshold", "[0, 1]"),
        ("version: 1\nprompt:\n  default:\n    action: deny\n", 4, "prompt.default.action",
         "allow, flag, block"),
        ("version: 1\nresponse:\n  on_error: maybe\n", 3, "response.on_error", "'open'"),
        ("version: 1\nprompt:\n  categories:\n    mitochondria: {action: block}\n", 4,
         "prompt.categories.mitochondria", "unknown setting"),
        ("version: 1\nprompt:\n  colour: red\n", 3, "prompt.colour", "unknown setting"),
        ("version: 2\n", 1, "version", "version 1"),
        ("version: 1\nprompt:\n  timeout_ms: -3\n", 3, "prompt.timeout_ms", "positive"),
        ("version: 1\nsystem_prompt_models: smollm\n", 2, "system_prompt_models", "list"),
        ("version: 1\nprompt:\n  crisis_language: 2\n", 3, "prompt.crisis_language", "[0, 1]"),
        ("version: 1\nresponse:\n  crisis_language: 0.8\n", 3, "response.crisis_language",
         "unknown setting"),
        ("version: 1\nresponse:\n  clean_prompt_threshold: yes\n", 3,
         "response.clean_prompt_threshold", "[0, 1]"),
        ("version: 1\nprompt:\n  clean_prompt_threshold: 0.9\n", 3,
         "prompt.clean_prompt_threshold", "unknown setting"),
        ("version: 1\nprompt:\n  judge_history: sometimes\n", 3, "prompt.judge_history",
         "'withhold'"),
        ("version: 1\nresponse:\n  judge_history: block\n", 3, "response.judge_history",
         "unknown setting"),
    ],
)
def test_invalid_policy_errors_name_line_and_field(text, line, field, fragment):
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(text, source="p.yaml")
    err = info.value
    assert err.line == line
    assert err.field == field
    assert fragment in str(err)
    assert str(err).startswith(f"p.yaml:{line}: {field}: ")


@pytest.mark.parametrize(("written", "mode"), [
    ("false", "off"), ("true", "block"), ("block", "block"), ("withhold", "withhold")])
def test_judge_history_modes(written, mode):
    policy = Policy.from_yaml(f"version: 1\nprompt:\n  judge_history: {written}\n")
    assert policy.role("prompt").judge_history == mode
    assert Policy.from_yaml("version: 1\n").role("prompt").judge_history == "off"


def test_yaml_syntax_error_reports_a_line():
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml("version: 1\nprompt: {a: [\n", source="p.yaml")
    assert info.value.line is not None
    assert "invalid YAML" in str(info.value)


def test_empty_and_unreadable_and_non_utf8_files(tmp_path):
    with pytest.raises(PolicyError, match="empty"):
        Policy.from_yaml("", source="p.yaml")
    with pytest.raises(PolicyError, match="cannot read"):
        Policy.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"version: 1\ndetector: \xff\xfe\n")
    with pytest.raises(PolicyError, match="UTF-8") as info:
        Policy.load(bad)
    assert info.value.line == 2


def test_category_rule_inherits_the_role_default():
    p = Policy.from_yaml(
        "prompt:\n  default: {threshold: 0.7, action: flag}\n  categories:\n"
        "    cyber: {action: block}\n"
    )
    rule = p.role("prompt").rule("cyber")
    assert rule.threshold == 0.7 and rule.action is Action.BLOCK
    assert p.role("prompt").rule("hate").action is Action.FLAG


def test_decide_takes_the_most_severe_crossed_rule():
    p = Policy.from_yaml(
        "prompt:\n  default: {threshold: 0.5, action: block}\n  categories:\n"
        "    self_harm: {action: flag}\n    privacy: {action: allow}\n"
    )
    flagged = p.decide("prompt", Detection(scores={"harm": 0.4, "self_harm": 0.8, "privacy": 0.9}))
    assert flagged.decision is Action.FLAG
    assert flagged.categories == ("self_harm",)
    named = Policy.from_yaml(
        "prompt:\n  default: {threshold: 0.5, action: block}\n  categories:\n"
        "    self_harm: {action: flag}\n    cyber: {action: block}\n"
    )
    blocked = named.decide("prompt",
                           Detection(scores={"harm": 0.9, "self_harm": 0.8, "cyber": 0.6}))
    assert blocked.decision is Action.BLOCK
    assert set(blocked.categories) == {"self_harm", "cyber"}
    # an unnamed category under an overall score is attribution only
    only_named = p.decide("prompt",
                          Detection(scores={"harm": 0.9, "self_harm": 0.8, "cyber": 0.6}))
    assert only_named.decision is Action.FLAG and only_named.categories == ("self_harm",)
    # without an overall score every category is a rule of its own
    no_harm = p.decide("prompt", Detection(scores={"self_harm": 0.8, "cyber": 0.6}))
    assert no_harm.decision is Action.BLOCK and set(no_harm.categories) == {"self_harm", "cyber"}
    allowed = p.decide("prompt", Detection(scores={"harm": 0.1, "cyber": 0.2}))
    assert allowed.decision is Action.ALLOW and allowed.categories == ()


def test_harm_decides_whether_and_a_named_top_category_decides_how():
    p = Policy.from_yaml(
        "prompt:\n  default: {threshold: 0.5, action: block}\n  categories:\n"
        "    harm: {threshold: 0.5, action: block}\n    self_harm: {action: flag}\n"
        "    sexual: {action: allow}\n"
    )
    low = dict.fromkeys(CATEGORY_IDS, 0.02)
    crisis = p.decide("prompt", Detection(scores=low | {"harm": 0.9, "self_harm": 0.9}))
    assert crisis.decision is Action.FLAG and crisis.categories == ("self_harm",)
    adult = p.decide("prompt", Detection(scores=low | {"harm": 0.9, "sexual": 0.9}))
    assert adult.decision is Action.ALLOW and adult.categories == ()
    # a category the policy does not name keeps harm's own action
    attack = p.decide("prompt", Detection(scores=low | {"harm": 0.9, "cyber": 0.9}))
    assert attack.decision is Action.BLOCK and attack.categories == ("cyber",)
    # an unnamed second category does not escalate the named one's flag ...
    mixed = low | {"harm": 0.9, "self_harm": 0.9, "violent_crime": 0.6}
    assert p.decide("prompt", Detection(scores=mixed)).decision is Action.FLAG
    # ... a named one crossing on its own does: most severe wins
    strict = Policy.from_yaml(
        "prompt:\n  categories:\n    self_harm: {action: flag}\n"
        "    violent_crime: {threshold: 0.5, action: block}\n"
    )
    assert strict.decide("prompt", Detection(scores=mixed)).decision is Action.BLOCK
    # harm set to allow: the overall score is ignored, categories rule on their own
    cats_only = Policy.from_yaml(
        "prompt:\n  default: {threshold: 0.5, action: block}\n  categories:\n"
        "    harm: {action: allow}\n"
    )
    assert cats_only.decide("prompt", Detection(scores=low | {"harm": 0.9, "cyber": 0.9})
                            ).decision is Action.BLOCK
    # harm under its threshold: nothing to decide
    quiet = p.decide("prompt", Detection(scores=low | {"harm": 0.3, "self_harm": 0.3}))
    assert quiet.decision is Action.ALLOW


def test_overall_harm_alone_is_attributed_to_the_likeliest_category():
    p = Policy.default()
    scores = dict.fromkeys(CATEGORY_IDS, 0.1) | {"harm": 0.95, "weapons": 0.3}
    v = p.decide("prompt", Detection(scores=scores), "fast")
    assert v.decision is Action.BLOCK
    assert v.categories == ("weapons",)
    assert "harm 0.95" in v.reason


def test_detector_error_is_resolved_by_fail_mode():
    p = Policy.from_yaml("prompt:\n  on_error: closed\nresponse:\n  on_error: open\n")
    err = Detection(scores={}, status=Status.ERROR, error="boom")
    closed = p.decide("prompt", err)
    opened = p.decide("response", err)
    assert closed.decision is Action.BLOCK and closed.status is Status.ERROR
    assert opened.decision is Action.ALLOW and opened.status is Status.ERROR
    assert "fail-closed" in closed.reason and "boom" in closed.reason


def test_settings_table_names_every_key_the_parser_accepts():
    names = {s.name for s in SETTINGS}
    for key in ("version", "detector", "safety_system_prompt", "system_prompt_models",
                "<role>.on_error", "<role>.timeout_ms", "<role>.default.threshold",
                "<role>.default.action", "<role>.categories.<label>.threshold",
                "prompt.crisis_language", "tool_output.action", "tool_output.threshold",
                "response.clean_prompt_threshold", "tool_output.followed",
                "<role>.categories.<label>.action"):
        assert key in names


def test_the_tool_output_check_is_off_unless_a_policy_turns_it_on():
    assert Policy.from_yaml("version: 1\n").tool_output.action is Action.ALLOW
    on = Policy.from_yaml("version: 1\ntool_output: {action: block, threshold: 0.8}\n")
    assert (on.tool_output.action, on.tool_output.threshold) == (Action.BLOCK, 0.8)
    with pytest.raises(PolicyError) as err:
        Policy.from_yaml("version: 1\ntool_output:\n  action: quarantine\n", source="p.yaml")
    assert "p.yaml:3" in str(err.value) and "tool_output.action" in str(err.value)
    assert on.tool_output_followed is Action.ALLOW  # answers are not read unless asked
    both = Policy.from_yaml("version: 1\ntool_output: {action: flag, followed: block}\n")
    assert (both.tool_output.action, both.tool_output_followed) == (Action.FLAG, Action.BLOCK)
    assert Policy.default().tool_output_followed is Action.FLAG
    with pytest.raises(PolicyError) as err:
        Policy.from_yaml("version: 1\ntool_output:\n  followed: maybe\n", source="p.yaml")
    assert "p.yaml:3" in str(err.value) and "tool_output.followed" in str(err.value)


def test_other_languages_rules_are_read_only_when_a_policy_asks():
    assert Policy.from_yaml("version: 1\ntool_output: {action: flag}\n"
                            ).tool_output_other_languages is False
    on = Policy.from_yaml("version: 1\ntool_output: {action: flag, other_languages: true}\n")
    assert on.tool_output_other_languages is True
    assert Policy.default().tool_output_other_languages is True  # the shipped policy reads them
    with pytest.raises(PolicyError) as err:
        Policy.from_yaml("version: 1\ntool_output:\n  other_languages: sometimes\n",
                         source="p.yaml")
    assert "p.yaml:3" in str(err.value) and "tool_output.other_languages" in str(err.value)
    assert "tool_output.other_languages" in {s.name for s in SETTINGS}


def test_an_answer_to_a_clean_prompt_is_halted_only_from_the_clean_prompt_threshold():
    p = Policy.from_yaml(
        "response:\n  default: {threshold: 0.5, action: block}\n"
        "  clean_prompt_threshold: 0.9\n  categories:\n    sexual_minors: {action: block}\n"
    )
    low = dict.fromkeys(CATEGORY_IDS, 0.02)
    middling = Detection(scores=low | {"harm": 0.7, "cbrn": 0.6})
    # to a flagged (or unchecked) prompt: the rule's own threshold
    assert p.decide("response", middling).decision is Action.BLOCK
    relaxed = p.decide("response", middling, prompt_clean=True)
    assert relaxed.decision is Action.FLAG
    assert relaxed.categories == ("cbrn",)  # still attributed, for the review queue
    assert "prompt was clean" in relaxed.reason
    sure = Detection(scores=low | {"harm": 0.95, "cbrn": 0.93})
    assert p.decide("response", sure, prompt_clean=True).decision is Action.BLOCK
    # a category the policy names keeps its threshold whatever the prompt
    minors = Detection(scores=low | {"harm": 0.7, "sexual_minors": 0.6})
    assert p.decide("response", minors, prompt_clean=True).decision is Action.BLOCK
    # prompts are never relaxed, and 0 (the parser's default) turns it off
    assert p.decide("prompt", middling, prompt_clean=True).decision is Action.BLOCK
    off = Policy.from_yaml("response:\n  default: {threshold: 0.5, action: block}\n")
    assert off.role("response").clean_prompt_threshold == 0.0
    assert off.decide("response", middling, prompt_clean=True).decision is Action.BLOCK


def test_the_default_policy_relaxes_answers_to_clean_prompts_except_for_minors():
    p = Policy.default()
    assert p.role("response").clean_prompt_threshold == 0.9
    assert p.role("response").rule("sexual_minors").action is Action.BLOCK


def test_an_unknown_detector_is_an_error_naming_the_line():
    # Else every check would fail open on a typo ("lama-guard-3").
    with pytest.raises(PolicyError) as err:
        Policy.from_yaml("version: 1\ndetector: lama-guard-3\n", source="p.yaml")
    assert str(err.value).startswith("p.yaml:2: detector:")
    assert "llama-guard-3" in str(err.value)  # the installed ones are listed
