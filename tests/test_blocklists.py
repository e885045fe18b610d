"""Blocklists: terms, patterns and built-in lists a policy bans outright
(guardstack/blocklists.py), and how a match changes the policy's verdict."""

from __future__ import annotations

import re

import pytest

from guardstack.blocklists import BUILTIN, CREDENTIAL_PATTERNS, Blocklist, find
from guardstack.classifiers.base import Detection, error_detection
from guardstack.policy import Policy, PolicyError
from guardstack.verdict import Action, Status, Verdict


def codenames(**kw) -> Blocklist:
    return Blocklist.build("codenames", terms=["Project Falcon", "osprey"], **kw)


@pytest.mark.parametrize("text", [
    "When does Project Falcon ship?",
    "when does project   falcon\nship?",       # any white space inside a phrase
    "OSPREY.",
    "(osprey)",
    "prоject fаlcon",                            # Cyrillic о and а: canonical form
    "pro\u200bject falcon",                      # a zero-width space inside
])
def test_terms_match_whole_words_case_and_lookalikes_aside(text):
    assert codenames().match(text) == "term"


@pytest.mark.parametrize("text", [
    "Falconry is an old sport.",
    "project falconer",
    "ospreys",            # whole words only: the plural is another word
    "What do mitochondria do?",
    "",
])
def test_terms_do_not_match_inside_other_words(text):
    assert codenames().match(text) is None


def test_terms_that_start_or_end_with_punctuation_need_no_word_boundary():
    bl = Blocklist.build("t", terms=["C++ internals", "#secret"])
    assert bl.match("about c++ internals today") == "term"
    assert bl.match("tagged x#secret") == "term"


def test_patterns_are_case_insensitive_unless_the_list_says_otherwise():
    loose = Blocklist.build("p", patterns=[r"\bACME-\d{4}\b"])
    strict = Blocklist.build("p", patterns=[r"\bACME-\d{4}\b"], case_sensitive=True)
    assert loose.match("ticket acme-1234") == "pattern"
    assert strict.match("ticket acme-1234") is None
    assert strict.match("ticket ACME-1234") == "pattern"
    assert loose.match("ticket ACME-12") is None


def test_a_pattern_that_does_not_compile_or_an_empty_list_is_refused():
    with pytest.raises(re.error):
        Blocklist.build("p", patterns=["(unclosed"])
    with pytest.raises(ValueError, match="needs terms"):
        Blocklist.build("p", terms=["  "])
    with pytest.raises(ValueError, match="unknown built-in"):
        Blocklist.build("p", builtin=["secrets"])


def fake_credentials() -> dict[str, str]:
    """One made-up value per credential format, built here so no string in
    the repository looks like a key."""
    a = "A1b2C3d4E5f6G7h8J9k0"
    return {
        "private key": "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE...",
        "AWS access key": "AKIA" + "Z" * 16,
        "GitHub token": "ghp" + "_" + (a * 2)[:36],
        "GitLab token": "glpat" + "-" + a,
        "Slack token": "xoxb" + "-" + "1234567890-" + a,
        "Slack webhook": "https://hooks.slack.com/services/" + "T0000/B0000/" + a,
        "OpenAI or Anthropic key": "sk" + "-proj-" + a + a,
        "Stripe key": "sk" + "_live_" + a,
        "Google API key": "AIza" + (a * 2)[:35],
        "Hugging Face token": "hf" + "_" + (a * 2)[:34],
        "guardstack key": "gs" + "-" + (a * 3)[:43],
        "JSON Web Token": "eyJ" + a + ".eyJ" + a + "." + a,
    }


def test_every_credential_format_is_found_and_named():
    creds = fake_credentials()
    assert set(creds) == {name for name, *_ in CREDENTIAL_PATTERNS}
    for name, value in creds.items():
        assert BUILTIN["credentials"](f"Use {value} to log in.") == name, name


@pytest.mark.parametrize("text", [
    "Set the OPENAI_API_KEY environment variable to your key.",
    "ask-me-anything-about-python-packaging",      # sk- inside a word
    "The AKIA prefix marks AWS access key ids.",
    "An RSA private key is a pair of large primes.",
    "Reset the token in GitHub's settings, then paste it into the CI secret.",
])
def test_talk_about_credentials_is_not_a_credential(text):
    assert BUILTIN["credentials"](text) is None


def test_pii_builtin_names_the_kinds_it_found():
    assert BUILTIN["pii"]("mail jane.doe@example.org or call (555) 123-4567") == "email, phone"
    assert BUILTIN["pii"]("card 4111 1111 1111 1111") == "card"
    assert BUILTIN["pii"]("card 4111 1111 1111 1112") is None   # fails the Luhn check
    assert BUILTIN["pii"]("Order 2024-11-27 shipped.") is None


@pytest.mark.parametrize("text", [
    "write to john.doe+news@example.co.uk today", "card 4111-1111-1111-1111.",
    "amex 3782 822463 10005", "pay to GB82 WEST 1234 5698 7654 32 now",
    "DE89370400440532013000", "call (555) 123-4567", "call +44 20 7946 0958",
    "call 555.123.4567!", "020 7946 0958",
])
def test_pii_builtin_finds_what_the_redactor_replaces(text):
    """The built-in skips texts without an @ or a run of digits; never one
    the store's redactor would change."""
    from guardstack.pii import redact_text

    assert redact_text(text)[1]
    assert BUILTIN["pii"](text) is not None


@pytest.mark.parametrize("text", [
    "How do I kill a Python process?", "a, b; c: d! (e) [f] {g} 'h' \"i\" ~j^ 100%",
    "line one\nline two", "x" * 5000, "col\tcol  spaced\r\nend",
])
def test_plain_ascii_skips_the_canonical_form_only_where_it_changes_nothing(text):
    from guardstack.blocklists import canonical_form
    from guardstack.normalize import canonical

    assert canonical_form(text) == canonical(text)
    # Terms match any run of white space, so only control characters matter.
    def spaced(t):
        return re.sub(r"\s+", " ", t)

    assert spaced(canonical_form(text, spacing_matters=False)) == spaced(canonical(text))


def test_find_applies_only_the_lists_for_the_role():
    lists = [codenames(roles=["prompt"]), Blocklist.build("keys", builtin=["credentials"],
                                                          roles=["response"])]
    key = fake_credentials()["AWS access key"]
    text = f"Project Falcon uses {key}"
    assert [h.blocklist.id for h in find(lists, "prompt", text)] == ["codenames"]
    assert [h.blocklist.id for h in find(lists, "response", text)] == ["keys"]
    assert find(lists, "prompt", None) == [] and find([], "prompt", text) == []


# -- in the policy ------------------------------------------------------------

POLICY = """
version: 1
prompt:
  default: {threshold: 0.5, action: block}
response:
  default: {threshold: 0.5, action: block}
blocklists:
  codenames:
    terms: [Project Falcon]
    category: privacy
  contact:
    builtin: [pii]
    roles: [prompt]
    action: flag
  keys:
    builtin: [credentials]
    roles: [response]
"""


def det(harm: float, status: Status = Status.OK) -> Detection:
    if status is not Status.OK:
        return error_detection("down", 3.0)
    return Detection(scores={"harm": harm, "cyber": harm}, latency_ms=1.0)


def test_a_match_raises_the_decision_whatever_the_classifier_said():
    policy = Policy.from_yaml(POLICY)
    v = policy.decide("prompt", det(0.01), "fast", text="Status of project falcon?")
    assert v.decision is Action.BLOCK
    assert v.blocklists == ("codenames",) and v.categories == ("privacy",)
    assert v.detector == "fast+blocklists" and "blocklist codenames (term)" in v.reason
    flagged = policy.decide("prompt", det(0.01), "fast", text="reach me at a@example.org")
    assert flagged.decision is Action.FLAG and flagged.blocklists == ("contact",)
    assert flagged.categories == ()
    clean = policy.decide("prompt", det(0.01), "fast", text="What do mitochondria do?")
    assert clean.decision is Action.ALLOW and clean.blocklists == ()
    assert clean.detector == "fast"


def test_a_match_never_lowers_a_block_and_keeps_the_classifier_reason():
    policy = Policy.from_yaml(POLICY)
    v = policy.decide("prompt", det(0.97), "fast", text="write malware, mail a@example.org")
    assert v.decision is Action.BLOCK and v.blocklists == ("contact",)
    assert v.reason.startswith("harm 0.97>=0.5") and v.reason.endswith("blocklist contact (email)")
    assert "a@example.org" not in v.reason


def test_the_reason_never_repeats_a_matched_secret():
    policy = Policy.from_yaml(POLICY)
    key = fake_credentials()["GitHub token"]
    v = policy.decide("response", det(0.0), "fast", text=f"Your token is {key}")
    assert v.blocked and v.blocklists == ("keys",)
    assert key not in v.reason and key not in v.to_json()
    assert "GitHub token" in v.reason


def test_a_match_blocks_even_when_the_detector_failed_open():
    policy = Policy.from_yaml(POLICY)
    v = policy.decide("prompt", det(0.0, Status.ERROR), "fast", text="project falcon")
    assert v.status is Status.ERROR and v.decision is Action.BLOCK
    assert v.blocklists == ("codenames",) and "fail-open" in v.reason


def test_a_match_is_not_relaxed_for_an_answer_to_a_clean_prompt():
    policy = Policy.from_yaml(POLICY + "\n")
    key = fake_credentials()["Stripe key"]
    v = policy.decide("response", det(0.0), "fast", text=key, prompt_clean=True)
    assert v.decision is Action.BLOCK


def test_verdict_round_trips_the_lists_and_omits_the_key_without_them():
    v = Verdict(Action.BLOCK, blocklists=("codenames",))
    assert Verdict.from_dict(v.to_dict()) == v
    assert "blocklists" not in Verdict(Action.ALLOW).to_dict()


@pytest.mark.parametrize(("yaml_text", "line", "field", "message"), [
    ("blocklists:\n  x:\n    patterns: ['ok', '(unclosed']\n", 3, "blocklists.x.patterns",
     "not a valid regular expression"),
    ("blocklists:\n  x:\n    builtin: [secrets]\n", 3, "blocklists.x.builtin",
     "must be one of credentials, pii"),
    ("blocklists:\n  x:\n    terms: [a]\n    roles: [prompts]\n", 4, "blocklists.x.roles",
     "must be one of prompt, response"),
    ("blocklists:\n  x:\n    roles: [prompt]\n", 3, "blocklists.x", "needs terms"),
    ("blocklists:\n  x:\n    terms: [a]\n    action: allow\n", 4, "blocklists.x.action",
     "must be flag, block or mask"),
    ("blocklists:\n  x:\n    terms: [a]\n    category: guns\n", 4, "blocklists.x.category",
     "taxonomy category"),
    ("blocklists:\n  x:\n    terms: a\n", 3, "blocklists.x.terms", "must be a list"),
    ("blocklists:\n  x:\n    terms: ['']\n", 3, "blocklists.x.terms", "non-empty text"),
    ("blocklists:\n  x:\n    terms: [a]\n    case_sensitive: yes please\n", 4,
     "blocklists.x.case_sensitive", "true or false"),
    ("blocklists:\n  x:\n    terms: [a]\n    words: [b]\n", 4, "blocklists.x.words",
     "unknown setting"),
    ("blocklists:\n  'two words':\n    terms: [a]\n", 2, "blocklists.two words", "list id"),
    ("blocklists: [a, b]\n", 1, "blocklists", "must be a mapping"),
])
def test_bad_blocklists_name_the_line_and_field(yaml_text, line, field, message):
    with pytest.raises(PolicyError) as err:
        Policy.from_yaml("version: 1\n" + yaml_text, source="p.yaml")
    assert err.value.line == line + 1
    assert err.value.field == field
    assert message in err.value.reason


def test_the_documented_example_policy_parses_and_behaves_as_described():
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "policy.md").read_text("utf-8")
    section = doc.split("## Blocklists", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = Policy.from_yaml("version: 1\n" + example, source="docs/policy.md")
    assert [b.id for b in policy.blocklists] == ["codenames", "tickets", "secrets",
                                                  "contact-details"]
    ticket = policy.decide("prompt", det(0.0), "fast", text="see acme-20451 for details")
    assert ticket.decision is Action.FLAG and ticket.blocklists == ("tickets",)
    key = fake_credentials()["AWS access key"]
    assert policy.decide("prompt", det(0.0), "fast", text=key).blocklists == ()
    assert policy.decide("response", det(0.0), "fast", text=key).blocklists == ("secrets",)


def test_may_complete_reads_the_end_of_a_text_for_lists_that_block_it():
    from guardstack.blocklists import may_complete

    keys = Blocklist.build("keys", builtin=["credentials"], roles=["response"])
    flagged = Blocklist.build("keys", builtin=["credentials"], action=Action.FLAG)
    contact = Blocklist.build("contact", builtin=["pii"])
    assert may_complete([keys], "response", "Your token is ghp_A1b2")
    assert may_complete([keys], "response", "export KEY=AKIA")
    assert not may_complete([keys], "response", "Your token is ghp_A1b2 and more")
    assert not may_complete([keys], "prompt", "Your token is ghp_A1b2")
    assert not may_complete([flagged], "response", "Your token is ghp_A1b2")
    assert may_complete([contact], "response", "write to jane.doe@exa")
    assert not may_complete([contact], "response", "write to jane.doe@example.org today")
    assert not may_complete([codenames()], "response", "Project")


# -- masking (action: mask) ------------------------------------------------------------

def test_mask_replaces_each_find_with_its_placeholder_and_counts_by_list():
    from guardstack.blocklists import mask

    key = fake_credentials()["GitHub token"]
    lists = [Blocklist.build("contact", builtin=["pii", "credentials"], action="mask"),
             Blocklist.build("codenames", terms=["Project Falcon", "Project"], action="mask"),
             Blocklist.build("tickets", patterns=[r"\bACME-\d+"], action="mask",
                             replacement="<ticket>")]
    text = (f"Mail jane.doe@example.org or call +44 20 7946 0958 about project falcon "
            f"(ACME-2041), token {key}; projects and falconry stay.")
    masked = mask(lists, "prompt", text)
    assert masked.text == ("Mail [EMAIL] or call [PHONE] about [CODENAMES] (<ticket>), "
                           "token [CREDENTIAL]; projects and falconry stay.")
    assert masked.counts == {"contact": 3, "codenames": 1, "tickets": 1}


def test_mask_applies_only_masking_lists_for_the_role_and_find_ignores_them():
    from guardstack.blocklists import mask

    masking = Blocklist.build("contact", builtin=["pii"], action="mask", roles=["response"])
    text = "write to jane.doe@example.org"
    assert mask([masking], "prompt", text).text == text
    assert mask([masking], "response", text).text == "write to [EMAIL]"
    # A masking list judges nothing: no hit, no verdict change.
    assert find([masking], "response", text) == []
    policy = Policy.from_yaml("version: 1\nblocklists:\n  contact:\n    builtin: [pii]\n"
                              "    action: mask\n    roles: [response]\n")
    verdict = policy.decide("response", det(0.0), "fast", text=text)
    assert verdict.decision is Action.ALLOW and verdict.blocklists == ()


def test_mask_overlapping_finds_keep_the_first_and_longest():
    from guardstack.blocklists import mask_spans

    lists = [Blocklist.build("a", terms=["new york"], action="mask"),
             Blocklist.build("b", patterns=["york city"], action="mask")]
    assert [(s, e, i) for s, e, _, i in mask_spans(lists, "prompt", "in New York City now")] \
        == [(3, 11, "a")]


def test_policy_parses_mask_and_replacement_and_monitor_mode_masks_nothing():
    yaml_text = ("version: 1\nblocklists:\n  contact:\n    builtin: [pii]\n    action: mask\n"
                 "  names:\n    terms: [osprey]\n    action: mask\n    replacement: '<x>'\n")
    policy = Policy.from_yaml(yaml_text)
    assert [b.mask for b in policy.blocklists] == [True, True]
    assert policy.mask("prompt", "osprey at a@b.io").text == "<x> at [EMAIL]"
    monitor = Policy.from_yaml(yaml_text + "mode: monitor\n")
    assert not monitor.masks("prompt")
    assert monitor.mask("prompt", "osprey at a@b.io").text == "osprey at a@b.io"


@pytest.mark.parametrize(("yaml_text", "line", "field", "message"), [
    ("blocklists:\n  x:\n    terms: [a]\n    replacement: '[A]'\n", 4, "blocklists.x.replacement",
     "only for a list with action: mask"),
    ("blocklists:\n  x:\n    terms: [a]\n    action: hide\n", 4, "blocklists.x.action",
     "must be one of allow, flag, block"),
])
def test_bad_masking_settings_name_the_line_and_field(yaml_text, line, field, message):
    with pytest.raises(PolicyError) as err:
        Policy.from_yaml("version: 1\n" + yaml_text, source="p.yaml")
    assert (err.value.line, err.value.field) == (line + 1, field)
    assert message in err.value.reason


def test_may_complete_holds_a_number_being_written_only_for_a_masking_pii_list():
    from guardstack.blocklists import may_complete

    masking = Blocklist.build("contact", builtin=["pii"], action="mask")
    blocking = Blocklist.build("contact", builtin=["pii"])
    assert may_complete([masking], "response", "call me on +44 20 79")
    assert not may_complete([blocking], "response", "call me on +44 20 79")
    assert may_complete([masking], "response", "mail jane@exa")
    assert not may_complete([masking], "response", "call me later")


def test_guard_mask_returns_the_text_as_the_gateway_sends_it_on():
    from guardstack.guard import Guard

    policy = Policy.from_yaml("version: 1\nblocklists:\n  contact:\n    builtin: [pii]\n"
                              "    action: mask\n    roles: [prompt]\n")
    guard = Guard(policy)
    assert guard.mask("mail jo@example.org") == "mail [EMAIL]"
    assert guard.mask("mail jo@example.org", role="response") == "mail jo@example.org"
    assert Guard().mask("mail jo@example.org") == "mail jo@example.org"  # no masking lists
    with pytest.raises(ValueError, match="role"):
        guard.mask("x", role="tool")


def test_restore_numbers_each_value_once_per_exchange():
    from guardstack.gateway.recorder import Exchange

    ex = Exchange("chat.completions")
    assert ex.numbered("[EMAIL]", "a@x.org") == "[EMAIL_1]"
    assert ex.numbered("[EMAIL]", "b@x.org") == "[EMAIL_2]"
    assert ex.numbered("[EMAIL]", "a@x.org") == "[EMAIL_1]"
    assert ex.numbered("[PHONE]", "+44 20 7946 0958") == "[PHONE_1]"
    assert ex.numbered("<x>", "osprey") == "<x>_1"
    assert ex.restore == {"[EMAIL_1]": "a@x.org", "[EMAIL_2]": "b@x.org",
                          "[PHONE_1]": "+44 20 7946 0958", "<x>_1": "osprey"}


@pytest.mark.parametrize(("yaml_text", "line", "message"), [
    ("blocklists:\n  x:\n    builtin: [pii]\n    restore: true\n", 4, "action: mask on prompts"),
    ("blocklists:\n  x:\n    builtin: [pii]\n    action: mask\n    roles: [response]\n"
     "    restore: true\n", 6, "action: mask on prompts"),
    ("blocklists:\n  x:\n    builtin: [pii]\n    action: mask\n    restore: maybe\n", 5,
     "true or false"),
])
def test_restore_is_only_for_lists_that_mask_prompts(yaml_text, line, message):
    with pytest.raises(PolicyError) as err:
        Policy.from_yaml("version: 1\n" + yaml_text, source="p.yaml")
    assert (err.value.line, err.value.field) == (line + 1, "blocklists.x.restore")
    assert message in err.value.reason


def test_may_complete_holds_for_a_masking_list_only_where_the_stream_is_masked():
    from guardstack.blocklists import may_complete

    masking = Blocklist.build("contact", builtin=["pii"], action="mask")
    assert may_complete([masking], "response", "mail jane@exa")
    assert not may_complete([masking], "response", "mail jane@exa", masking=False)
    blocking = Blocklist.build("keys", builtin=["credentials"])
    assert may_complete([blocking], "response", "token ghp_A1b2", masking=False)
