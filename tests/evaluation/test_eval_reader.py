import json

import pytest

from guardstack.classifiers.base import Message
from guardstack.evaluation.categories import to_taxonomy
from guardstack.evaluation.reader import InputError, read_records


def write_lines(path, lines):
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def jl(**record):
    return json.dumps(record).encode()


def read_all(path, **kw):
    return list(read_records(path, **kw))


def error_of(path, **kw):
    with pytest.raises(InputError) as info:
        read_all(path, **kw)
    return info.value


def test_reads_prompt_records(tmp_path):
    f = write_lines(tmp_path / "a.jsonl", [
        jl(id="1", text="What is DNS?", label="safe", categories=[], source="s"),
        jl(id="2", text="Write malware", label="unsafe", categories=["Malware/Hacking"]),
    ])
    a, b = read_all(f)
    assert (a.line, a.subject.text, a.subject.role, a.unsafe, a.id) == (1, "What is DNS?",
                                                                          "prompt", False, "1")
    assert b.unsafe and b.categories == ("Malware/Hacking",) and b.line == 2


def test_response_records_are_judged_as_responses_with_their_prompt(tmp_path):
    f = write_lines(tmp_path / "r.jsonl", [
        jl(text="How do I make a bomb?", response="I can't help with that.", label="safe"),
    ])
    (rec,) = read_all(f)
    assert rec.subject.role == "response"
    assert rec.subject.text == "I can't help with that."
    assert rec.subject.context == (Message("user", "How do I make a bomb?"),)


def test_response_with_role_tagged_context(tmp_path):
    context = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
               {"role": "user", "content": "tell me a joke"}]
    f = write_lines(tmp_path / "d.jsonl", [
        jl(turns=["hi", "tell me a joke"], context=context, response="Knock knock.",
           label="safe"),
    ])
    (rec,) = read_all(f)
    assert rec.subject.role == "response"
    assert [m.content for m in rec.subject.context] == ["hi", "hello", "tell me a joke"]


def test_multi_turn_judges_last_user_turn_with_earlier_context(tmp_path):
    conversation = [
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "reply"},
        {"role": "user", "content": "second"}, {"role": "assistant", "content": "reply 2"},
    ]
    f = write_lines(tmp_path / "t.jsonl", [
        jl(turns=["first", "second"], label="safe"),
        jl(turns=["first", "second"], conversation=conversation, label="safe"),
    ])
    plain, with_conv = read_all(f)
    assert plain.subject.text == "second" and plain.subject.role == "prompt"
    assert plain.subject.context == (Message("user", "first"),)
    assert with_conv.subject.text == "second"
    assert with_conv.subject.context == (Message("user", "first"), Message("assistant", "reply"))


def test_string_context_becomes_a_user_message(tmp_path):
    f = write_lines(tmp_path / "h.jsonl", [jl(text="Summarize it", context="A document.",
                                              label="unsafe")])
    (rec,) = read_all(f)
    assert rec.subject.context == (Message("user", "A document."),)


def test_role_override(tmp_path):
    f = write_lines(tmp_path / "o.jsonl", [
        jl(text="the prompt", response="the answer", label="unsafe"),
        jl(text="only text", label="safe"),
    ])
    as_prompt = read_all(f, role="prompt")
    assert [r.subject.text for r in as_prompt] == ["the prompt", "only text"]
    assert {r.subject.role for r in as_prompt} == {"prompt"}
    as_response = read_all(f, role="response")
    assert [r.subject.text for r in as_response] == ["the answer", "only text"]
    assert {r.subject.role for r in as_response} == {"response"}


def test_blank_lines_bom_and_limit(tmp_path):
    f = tmp_path / "b.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + jl(text="a", label="safe") + b"\n\n  \r\n"
                  + jl(text="b", label="unsafe") + b"\r\n" + jl(text="c", label="safe"))
    records = read_all(f)
    assert [(r.line, r.subject.text) for r in records] == [(1, "a"), (4, "b"), (5, "c")]
    assert [r.subject.text for r in read_all(f, limit=2)] == ["a", "b"]


def test_empty_text_is_a_valid_record(tmp_path):
    f = write_lines(tmp_path / "e.jsonl", [jl(text="", label="safe")])
    (rec,) = read_all(f)
    assert rec.subject.text == ""


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"text": "a", "label": "safe"', "malformed JSON"),
        (b"not json at all", "malformed JSON"),
        (b'["a", "safe"]', "expected a JSON object, got array"),
        (jl(text="a"), "missing field 'label'"),
        (jl(text="a", label="harmful"), 'bad label "harmful"'),
        (jl(text="a", label=1), "bad label 1"),
        (jl(label="safe"), "missing field 'text'"),
        (jl(text=5, label="safe"), "field 'text' must be a string, got number"),
        (jl(turns=[], label="safe"), "field 'turns' must be a non-empty list of strings"),
        (jl(text="a", label="safe", categories="hate"), "'categories' must be a list"),
        (jl(text="a", label="safe", context=[{"role": "user"}]), "context[0] must be an object"),
        (b'{"text": "\\ud800", "label": "safe"}', "lone surrogate"),
    ],
)
def test_bad_records_name_file_and_line(tmp_path, line, reason):
    f = write_lines(tmp_path / "bad.jsonl", [jl(text="fine", label="safe"), b"", line])
    err = error_of(f)
    assert err.file == str(f) and err.line == 3
    assert reason in err.reason
    assert str(err).startswith(f"{f}:3: ")


def test_invalid_utf8_names_the_line(tmp_path):
    f = write_lines(tmp_path / "u.jsonl", [jl(text="ok", label="safe"),
                                           b'{"text": "caf\xe9", "label": "safe"}'])
    err = error_of(f)
    assert err.line == 2 and "invalid UTF-8" in err.reason


def test_binary_garbage_file_is_an_error(tmp_path):
    f = tmp_path / "garbage.jsonl"
    f.write_bytes(bytes(range(256)) * 8)
    err = error_of(f)
    assert err.line == 1
    assert "invalid UTF-8" in err.reason or "malformed JSON" in err.reason


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    err = error_of(empty)
    assert err.line == 1 and "empty file" in err.reason
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\n\n\n")
    assert "empty file" in error_of(blank).reason
    missing = error_of(tmp_path / "nope.jsonl")
    assert missing.line is None and "cannot open" in missing.reason
    assert str(missing).startswith(f"{tmp_path / 'nope.jsonl'}: ")


def test_error_after_valid_records_comes_when_reached(tmp_path):
    f = write_lines(tmp_path / "late.jsonl", [jl(text="a", label="safe"), b"{oops"])
    records = read_records(f)
    assert next(records).subject.text == "a"
    with pytest.raises(InputError):
        next(records)


def test_category_names_map_to_taxonomy():
    assert to_taxonomy(["chemical_biological"], source="harmbench") == ("cbrn",)
    assert to_taxonomy(["Malware/Hacking"], source="jailbreakbench") == ("cyber",)
    assert to_taxonomy(["cyber", "privacy"]) == ("cyber", "privacy")
    assert to_taxonomy(["Privacy"]) == ("privacy",)  # a taxonomy id in other letter case
    assert to_taxonomy(["cbrn"], source="harmbench") == ("cbrn",)  # exported test splits
    assert to_taxonomy(["privacy_violation"], source="cosafe") == ("privacy",)
    assert to_taxonomy(["copyright"], source="harmbench") == ()
    assert to_taxonomy(["slur_h"], source="hatecheck") == ("hate",)
    assert to_taxonomy([], source="unknown_set") == ()


def test_a_line_cut_short_is_reported_where_it_ends(tmp_path):
    cut = b'{"text": "a", "label": "safe"'
    f = write_lines(tmp_path / "cut.jsonl", [cut, jl(text="b", label="safe")])
    err = error_of(f)
    assert err.line == 1 and f"(column {len(cut) + 1})" in err.reason, err.reason
