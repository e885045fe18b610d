import json

import pytest

from guardstack.simulate.generator import SimulationConfig, generate
from guardstack.simulate.sinks import default_truth_path, write_jsonl


def test_truth_sits_beside_the_output(tmp_path):
    assert default_truth_path(tmp_path / "t.jsonl") == tmp_path / "t.truth.json"
    assert default_truth_path(tmp_path / "log") == tmp_path / "log.truth.json"


def test_an_interrupted_write_leaves_neither_a_partial_file_nor_litter(tmp_path):
    records = generate(SimulationConfig(users=5, days=2)).records
    out = tmp_path / "t.jsonl"
    out.write_text("previous run\n")

    def broken():
        yield from records[:3]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(broken(), out)
    assert out.read_text() == "previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]


def test_lines_are_utf8_json_that_splitlines_agrees_with(tmp_path):
    traffic = generate(SimulationConfig(users=200, days=3, seed=8,
                                        mix={"adversary": 1.0, "coordinated": 1.0}))
    out = tmp_path / "t.jsonl"
    assert write_jsonl(traffic.records, out) == len(traffic.records)
    raw = out.read_bytes().decode("utf-8")
    assert raw.splitlines() == raw.split("\n")[:-1]
    lines = [json.loads(line) for line in raw.splitlines()]
    contents = [line["content"] for line in lines if line["role"] == "user"]
    assert contents == [r.content for r in traffic.records]
    # agents' pages follow their turns: one line each
    assert [line["content"] for line in lines if line["role"] == "tool"] == \
        [r.tool[1] for r in traffic.records if r.tool]
    assert any(not c.isascii() for c in contents)  # multilingual campaign posts survive
