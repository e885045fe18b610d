import json
from pathlib import Path

import pytest

from guardstack.model import suite
from guardstack.taxonomy import CATEGORY_IDS

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_default_suite_is_balanced_and_uses_taxonomy_ids():
    s = suite.load()
    assert len(s.harmful) == 40 and len(s.benign) == 40
    for item in s.items:
        assert item.categories and set(item.categories) <= set(CATEGORY_IDS)
    assert len({i.id for i in s.items}) == len(s.items)
    # Every harm category the default suite covers has benign counterparts.
    harm_cats = {c for i in s.harmful for c in i.categories}
    assert harm_cats == {c for i in s.benign for c in i.categories}


def _write(tmp_path, lines):
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_line_names_file_and_line(tmp_path):
    good = json.dumps({"id": "a", "text": "hi", "label": "safe", "categories": []})
    path = _write(tmp_path, [good, "{not json"])
    with pytest.raises(suite.SuiteError, match=r"s\.jsonl:2: not valid JSON"):
        suite.load([path])


@pytest.mark.parametrize("record, message", [
    ({"id": "a", "label": "safe"}, "'text' must be a non-empty string"),
    ({"id": "a", "text": "x", "label": "maybe"}, "'label' must be"),
    ({"id": True, "text": "x", "label": "safe"}, "'id' must be"),
    ({"id": "", "text": "x", "label": "safe"}, "'id' must be"),
    ({"id": "a", "text": "x", "label": "safe", "categories": "hate"}, "'categories' must be"),
])
def test_bad_records_are_errors(tmp_path, record, message):
    with pytest.raises(suite.SuiteError, match=message):
        suite.load([_write(tmp_path, [json.dumps(record)])])


def test_duplicate_ids_are_errors(tmp_path):
    rec = json.dumps({"id": "a", "text": "x", "label": "safe", "source": "s"})
    with pytest.raises(suite.SuiteError, match="duplicate id"):
        suite.load([_write(tmp_path, [rec, rec])])


def test_response_level_and_multi_turn_records_are_skipped_and_counted(tmp_path):
    lines = [json.dumps({"id": "a", "text": "q", "response": "r", "label": "unsafe"}),
             json.dumps({"id": "b", "turns": ["q1", "q2"], "label": "unsafe"}),
             json.dumps({"id": "c", "text": "q", "label": "unsafe", "categories": ["hate"]})]
    s = suite.load([_write(tmp_path, lines)])
    assert [i.id for i in s.items] == ["c"] and s.skipped == 2


def test_missing_and_empty_files_are_errors(tmp_path):
    with pytest.raises(suite.SuiteError, match="no such suite file"):
        suite.load([tmp_path / "nope.jsonl"])
    with pytest.raises(suite.SuiteError, match=r"s\.jsonl\) has no prompt-level records"):
        suite.load([_write(tmp_path, [""])])


def test_a_file_eval_reads_is_read_the_same(tmp_path):
    # no ids (named by file and line, unique across files), a byte-order mark,
    # a raw U+2028 inside a string (text, not a line break), CRLF line ends
    a = tmp_path / "a.jsonl"
    a.write_bytes(b"\xef\xbb\xbf" + json.dumps({"text": "one\u2028two", "label": "safe"},
                                                ensure_ascii=False).encode() + b"\r\n"
                  + json.dumps({"text": "three", "label": "unsafe"}).encode() + b"\r\n")
    b = _write(tmp_path, [json.dumps({"text": "four", "label": "safe"})])
    s = suite.load([a, b])
    assert [i.text for i in s.items] == ["one\u2028two", "three", "four"]
    assert [i.id for i in s.items] == [f"{a}:1", f"{a}:2", f"{b}:1"]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(json.dumps({"text": "x", "label": "safe"}).encode() + b"\n\xff\xfe\n")
    with pytest.raises(suite.SuiteError, match=r"bad\.jsonl:2: not UTF-8"):
        suite.load([bad])


def test_limit_spreads_over_categories():
    small = suite.limit(suite.load(), 5)
    assert len(small.harmful) == 5 and len(small.benign) == 5
    assert len({i.categories[0] for i in small.harmful}) == 5


@pytest.mark.skipif(not (DATA / "harmbench").exists(), reason="shared data not present")
def test_shared_data_files_load_with_mapped_categories():
    s = suite.load([DATA / "harmbench" / "harmbench.jsonl"])
    assert len(s.harmful) > 100 and not s.benign
    assert any(i.categories for i in s.items)
    assert all(set(i.categories) <= set(CATEGORY_IDS) for i in s.items)
