"""Keeps the content rule honest: simulated texts are requests that may name a
goal, never instructions, recipes, quantities, code or explicit content."""

import re
from collections import defaultdict

import pytest

from guardstack.simulate.generator import SimulationConfig, generate

HAZARD = (r"toxin|pathogen|agent|explosive|bomb|detonat|nerve|ricin|sarin|anthrax|fentanyl|"
          r"poison|meth|precursor|fertili[sz]er|nitrate|chlorine|bleach|spore|virus|bacteri|"
          r"incendiar|molotov|firebomb|weapon|gun|ammunition|malware|ransomware|keylogger|"
          r"exploit|payload|overdose|lethal")
QUANTITY = (r"\d+(?:[.,]\d+)?\s*(?:mg|g|kg|µg|mcg|ml|l|litres?|liters?|grams?|ounces?|oz|"
            r"lbs?|pounds?|gallons?|%|percent|ppm|mol|moles|°\s*[cf]|degrees|psi|volts?)\b")

DENYLIST = {
    "step-by-step wording": re.compile(r"\bstep[- ]?by[- ]?step\b|\bstep \d", re.I),
    "numbered list": re.compile(r"(?m)^\s*\d+[.)]\s"),
    "multi-line text": re.compile(r"\n"),
    "code": re.compile(r"(?:^|[\n;]\s*)(?:from \S+ )?import \w+|\bdef \w+\(|#include|"
                       r"<script|\beval\(|\bsocket\.|\bsubprocess\b|\bos\.system|"
                       r"\bpowershell -", re.I),
    "preparation verbs near a hazard": re.compile(
        rf"\b(?:mix|combine|dissolve|distil|distill|purify|grind|synthesi[sz]e it|heat it)\b"
        rf".{{0,60}}(?:{HAZARD})|(?:{HAZARD}).{{0,60}}\b(?:mix|combine|dissolve|distil|"
        rf"distill|purify|grind)\b", re.I),
    "quantity near a hazard": re.compile(
        rf"{QUANTITY}.{{0,60}}(?:{HAZARD})|(?:{HAZARD}).{{0,60}}{QUANTITY}", re.I),
}
#: Means of self-harm must never appear in the at-risk personas' messages.
METHODS = re.compile(r"\b(?:pills?|overdos\w*|rope|hang\w*|jump\w*|bridge|razor|blade|"
                     r"cut(?:ting)? myself|wrists?|gun|poison\w*|tablets?)\b", re.I)
MAX_CHARS = 400


@pytest.fixture(scope="module")
def corpus():
    texts = []
    truths = []
    for seed in (0, 1, 2):
        traffic = generate(SimulationConfig(users=800, days=21, seed=seed))
        texts.extend(traffic.records)
        truths.append(traffic)
    return texts, truths


def test_denylist_catches_what_it_should():
    # The scan itself must be able to fail.
    bad = [
        "Step 1: dissolve the toxin",
        "Mix the bleach with the other cleaner",
        "Use 50 g of fertiliser",
        "1. take the agent\n2. spray it",
        "import socket; s = socket.socket()",
    ]
    for text in bad:
        assert any(p.search(text) for p in DENYLIST.values()), text
    assert METHODS.search("I keep thinking about the bridge")


def test_no_generated_text_looks_like_instructions(corpus):
    records, _ = corpus
    hits = defaultdict(list)
    for record in records:
        for name, pattern in DENYLIST.items():
            if pattern.search(record.content):
                hits[name].append(record.content)
    assert not hits, {k: v[:3] for k, v in hits.items()}


def test_texts_are_short_requests(corpus):
    records, _ = corpus
    too_long = [r.content for r in records if len(r.content) > MAX_CHARS]
    assert not too_long, too_long[:3]


def test_at_risk_users_express_feelings_never_means(corpus):
    _, traffics = corpus
    checked = 0
    for traffic in traffics:
        by_id = {r.id: r for r in traffic.records}
        for entry in traffic.truth["users"].values():
            if entry["label"] != "at_risk":
                continue
            for mid in entry["evidence_message_ids"]:
                checked += 1
                assert not METHODS.search(by_id[mid].content), by_id[mid].content
    assert checked > 100
