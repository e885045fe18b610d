import json
import re
from collections import Counter
from pathlib import Path

import pytest

from guardstack.taxonomy import CATEGORY_IDS
from guardstack.training import contrast, data

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"

pytestmark = pytest.mark.skipif(not (DATA_DIR / "README.md").exists(), reason="no shared data")


@pytest.fixture(scope="module")
def mix():
    return data.build_mix(DATA_DIR)


def _readme_license_table():
    """dataset -> NC column text, straight from the data README."""
    rows = {}
    for line in (DATA_DIR / "README.md").read_text().splitlines():
        m = re.match(r"\| `([a-z0-9_]+)` \|", line)
        if m:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 9:
                continue  # the schema table, not the dataset table
            rows[m.group(1)] = (cells[6], cells[7])  # license, NC?
    return rows


def test_split_is_deterministic_and_close_to_70_15_15():
    keys = [f"prompt number {i}" for i in range(20_000)]
    first = [data.split_of(k) for k in keys]
    assert first == [data.split_of(k) for k in keys]
    counts = Counter(first)
    assert abs(counts["train"] / 20_000 - 0.70) < 0.02
    assert abs(counts["dev"] / 20_000 - 0.15) < 0.02
    assert abs(counts["test"] / 20_000 - 0.15) < 0.02
    moved = sum(data.split_of(k, seed=1) != data.split_of(k, seed=2) for k in keys[:1000])
    assert moved > 300  # the seed really takes part


def test_building_the_mix_twice_gives_the_same_rows():
    def only(s):
        return s in {"harmbench", "or_bench_hard", "gsm8k"}

    a = data.build_mix(DATA_DIR, sources=only)
    b = data.build_mix(DATA_DIR, sources=only)
    assert [(e.source, e.id) for e in a.train] == [(e.source, e.id) for e in b.train]
    assert [(e.source, e.id) for e in a.dev] == [(e.source, e.id) for e in b.dev]
    assert {k: [e.id for e in v] for k, v in a.test.items()} == {
        k: [e.id for e in v] for k, v in b.test.items()
    }


def test_no_test_or_dev_text_is_trained_on_under_any_source(mix):
    train_texts = {data.content_key(e.text) for e in mix.train if e.role == "prompt"}
    train_keys = {(e.source, e.key) for e in mix.train}
    held = [*mix.dev, *(e for rows in mix.test.values() for e in rows)]
    assert len(held) > 10_000
    for e in held:
        if e.role == "prompt":
            assert data.content_key(e.text) not in train_texts, (e.source, e.text)
        assert (e.source, e.key) not in train_keys, (e.source, e.key)


def test_license_filter_keeps_nc_and_unlicensed_sets_out_of_training(mix):
    table = _readme_license_table()
    assert len(table) >= 30
    for name, (license_, nc) in table.items():
        restricted = "yes" in nc.lower() or nc.lower().startswith("treat as nc")
        unlicensed = "none stated" in license_.lower() or "not stated" in license_.lower()
        if restricted or (unlicensed and "translations" not in license_.lower()):
            assert name not in data.TRAINABLE, name
            assert name in data.EVAL_ONLY, name
        else:
            assert name in data.TRAINABLE | data.EVAL_ONLY, name
    trained = {e.source for e in mix.train}
    assert not trained & data.EVAL_ONLY
    for e in mix.train + mix.dev:
        if e.source == "orbench80k_multilingual":
            assert e.lang == "en"  # translations carry no license
    kor = {
        json.loads(line)["id"]: json.loads(line)
        for line in (DATA_DIR / "k_overrefusal" / "k_overrefusal.jsonl")
        .read_text("utf-8")
        .splitlines()
    }
    for e in mix.train:
        if e.source == "k_overrefusal":
            assert kor[e.id]["meta"].get("orig_type") not in {
                "maliciousinstruct",
                "phtest",
                "oktest",
                "homonyms",
            }
    assert "oktest" in mix.eval_only and "phtest" in mix.eval_only


def test_label_mapping_to_the_taxonomy(mix):
    by = {
        (e.source, e.id): e
        for e in [*mix.train, *mix.dev, *(x for v in mix.test.values() for x in v)]
    }
    harmbench = [e for (s, _), e in by.items() if s == "harmbench"]
    assert harmbench and all(e.harm == 1 for e in harmbench)
    raw = {
        json.loads(line)["id"]: json.loads(line)
        for line in (DATA_DIR / "harmbench" / "harmbench.jsonl").read_text("utf-8").splitlines()
    }
    for e in harmbench:
        cats = raw[e.id]["categories"]
        assert "copyright" not in cats
        if "chemical_biological" in cats:
            assert e.categories == ("cbrn",)
        if "cybercrime_intrusion" in cats:
            assert e.categories == ("cyber",)
    jb = [e for (s, _), e in by.items() if s == "jailbreak_llms"]
    assert jb and all(e.harm == 1 and e.categories == ("jailbreak",) for e in jb)
    offensive = [
        e
        for e in mix.train
        if e.source == "davidson_hate_offensive" and e.categories == ("harassment",)
    ]
    assert offensive and all(e.weight == 0.5 for e in offensive)


def test_targets_mask_unknown_categories_and_zero_safe_rows():
    unknown = data.Example("x", "1", "t", harm=1, categories=None)
    y, mask = unknown.targets()
    assert y[0] == 1.0 and sum(y) == 1.0
    assert mask == [1.0] + [0.0] * len(CATEGORY_IDS)
    known = data.Example("x", "2", "t", harm=1, categories=("cyber",))
    y, mask = known.targets()
    assert y[data.LABELS.index("cyber")] == 1.0 and sum(mask) == len(data.LABELS)
    safe = data.Example("x", "3", "t")
    y, mask = safe.targets()
    assert sum(y) == 0.0 and sum(mask) == len(data.LABELS)


def test_contrast_sets_pair_benign_and_harmful_requests_without_overlap():
    benign = list(contrast.expand(contrast.BENIGN, 40, 1))
    harmful = list(contrast.expand(contrast.HARMFUL, 30, 1))
    assert len(benign) >= 300 and len(harmful) >= 200
    assert all(cat is None for _, cat, _ in benign)
    assert all(cat in CATEGORY_IDS for _, cat, _ in harmful)
    assert not {t for t, _, _ in benign} & {t for t, _, _ in harmful}
    # the same trigger words appear on both sides: that is what teaches intent
    for word in ("kill", "poison", "ransomware"):
        assert any(word in t.lower() for t, _, _ in benign)
        assert any(word in t.lower() for t, _, _ in harmful)


def test_response_rows_are_present_but_a_minority(mix):
    responses = [e for e in mix.train if e.role == "response"]
    assert 0.05 < len(responses) / len(mix.train) < 0.3
    refusals = [e for e in mix.train if e.source == "synthetic_refusals"]
    assert refusals and all(e.harm == 0 and e.context for e in refusals)
    assert any(e.harm == 1 for e in responses)


def test_export_splits_writes_normalized_jsonl(mix, tmp_path):
    written = data.export_splits(mix, tmp_path)
    assert "or_bench_hard.test.jsonl" in written and "phtest.evalonly.jsonl" in written
    assert "harmbench.test.jsonl" in written
    rows = [
        json.loads(line) for line in (tmp_path / "harmbench.test.jsonl").read_text().splitlines()
    ]
    assert len(rows) == written["harmbench.test.jsonl"] == len(mix.test["harmbench"])
    for r in rows:
        assert {"id", "text", "label", "categories", "source", "split", "meta"} <= set(r)
        assert r["label"] == "unsafe"
    resp = [json.loads(line) for line in (tmp_path / "dices.test.jsonl").read_text().splitlines()]
    assert all(r["label_target"] == "response" and r["response"] for r in resp)
