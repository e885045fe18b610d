"""``guardstack eval`` through the real CLI: bad input exits 2 with ``FILE:LINE``
before any model loads; good input is scored by the shipped classifier and
the report is checked for structure and internal consistency (the scores
themselves are the model's business, so none is hard-coded here)."""

import json
import random
import subprocess
import sys

import pytest

from guardstack.cli import main
from guardstack.evaluation.commands import examples_path
from guardstack.taxonomy import CATEGORY_IDS

RESULT_KEYS = {"file", "n", "precision", "recall", "f1", "fpr", "auprc", "latency_p50_ms",
               "latency_p95_ms", "throughput_per_s", "tp", "fp", "tn", "fn", "n_safe",
               "n_unsafe", "per_category_recall"}


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path


def run_json(capsys, *args):
    rc = main(["eval", "--json", *map(str, args)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)["results"]


def fails_with(capsys, *args):
    rc = main(["eval", *map(str, args)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""  # nothing half-reported
    assert err.startswith("guardstack: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    return err.removeprefix("guardstack: error: ").strip()


def check_consistent(result, n_lines):
    assert result.keys() >= RESULT_KEYS
    tp, fp, tn, fn = (result[k] for k in ("tp", "fp", "tn", "fn"))
    assert result["n"] == n_lines == tp + fp + tn + fn
    assert tp + fn == result["n_unsafe"] and fp + tn == result["n_safe"]
    expected = {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "fpr": fp / (fp + tn) if fp + tn else None,
    }
    for key, value in expected.items():
        assert result[key] == (None if value is None else pytest.approx(value, abs=1e-6)), key
    p, r = result["precision"], result["recall"]
    if p is not None and r is not None:
        assert result["f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0, abs=1e-5)
    if r is None:
        assert result["f1"] is None
    if result["n_unsafe"]:
        assert 0.0 <= result["auprc"] <= 1.0
    else:
        assert result["auprc"] is None
    assert 0 < result["latency_p50_ms"] <= result["latency_p95_ms"]
    assert result["throughput_per_s"] > 0
    for cat, entry in result["per_category_recall"].items():
        assert cat in CATEGORY_IDS
        assert 1 <= entry["n"] <= result["n_unsafe"] and 0.0 <= entry["recall"] <= 1.0


# ---------------------------------------------------------------- bad input


@pytest.fixture
def good(tmp_path):
    return write_jsonl(tmp_path / "good.jsonl", [{"text": "What is DNS?", "label": "safe"}])


def test_missing_file(capsys, tmp_path):
    msg = fails_with(capsys, tmp_path / "nope.jsonl")
    assert msg.startswith(f"{tmp_path / 'nope.jsonl'}: cannot open")


def test_malformed_jsonl_line(capsys, tmp_path, good):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": "safe"}\n{"text": "b", "label": \n', encoding="utf-8")
    # The good file comes first: bad input anywhere fails before anything is scored.
    msg = fails_with(capsys, good, bad)
    assert msg.startswith(f"{bad}:2: malformed JSON")


def test_invalid_utf8_line(capsys, tmp_path):
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"text": "ok", "label": "safe"}\n{"text": "na\xefve", "label": "safe"}\n')
    assert fails_with(capsys, bad).startswith(f"{bad}:2: invalid UTF-8")


def test_binary_garbage_file(capsys, tmp_path):
    bad = tmp_path / "garbage.jsonl"
    bad.write_bytes(random.Random(1).randbytes(4096))
    msg = fails_with(capsys, bad)
    assert msg.startswith(f"{bad}:")
    assert "invalid UTF-8" in msg or "malformed JSON" in msg


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"label": "safe"}, "missing field 'text'"),
        ({"text": "hello"}, "missing field 'label'"),
        ({"text": "hello", "label": "toxic"}, "bad label"),
    ],
)
def test_bad_records(capsys, tmp_path, record, reason):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "fine", "label": "safe"}, record])
    msg = fails_with(capsys, bad)
    assert msg.startswith(f"{bad}:2: ") and reason in msg


def test_empty_file(capsys, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert fails_with(capsys, empty).startswith(f"{empty}:1: empty file")


def test_invalid_policy_file(capsys, tmp_path, good):
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nprompt:\n  default:\n    threshold: 1.5\n", encoding="utf-8")
    msg = fails_with(capsys, good, "--policy", policy)
    assert msg.startswith(f"{policy}:4: prompt.default.threshold: ")
    broken = tmp_path / "broken.yaml"
    broken.write_text("prompt: [unclosed\n", encoding="utf-8")
    assert fails_with(capsys, good, "--policy", broken).startswith(f"{broken}:")
    assert "cannot read" in fails_with(capsys, good, "--policy", tmp_path / "none.yaml")


def test_no_files(capsys):
    assert "at least one" in fails_with(capsys)


def test_bad_options_are_usage_errors(capsys, good):
    for option in (["--batch-size", "0"], ["--limit", "-3"], ["--role", "system"]):
        with pytest.raises(SystemExit) as info:
            main(["eval", str(good), *option])
        assert info.value.code == 2
    assert "--batch-size" in capsys.readouterr().err


def test_bad_input_in_a_real_process_prints_no_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "guardstack", "eval", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"guardstack: error: {bad}:1: malformed JSON: ")
    assert proc.stderr.count("\n") == 1 and proc.stderr.endswith("(column 2)\n")


# ---------------------------------------------------------------- real model


def test_json_report_on_mixed_and_all_safe_files(capsys, tmp_path):
    """Prompts, responses and multi-turn records, plus the odd inputs the
    issue lists (empty text, binary garbage as text): each is scored."""
    with open(examples_path(), encoding="utf-8") as f:
        examples = [json.loads(line) for line in f if line.strip()]
    garbage = bytes(random.Random(2).randbytes(2000)).decode("latin-1")
    odd = [
        {"text": "", "label": "safe"},
        {"text": garbage, "label": "safe"},
        {"turns": ["hi", "what's a good name for a cat?"], "label": "safe"},
    ]
    mixed = write_jsonl(tmp_path / "mixed.jsonl", examples + odd)
    all_safe = write_jsonl(tmp_path / "safe.jsonl", [
        {"text": "How do I kill a Python process?", "label": "safe"},
        {"text": "Where is the Eiffel Tower?", "label": "safe"},
        {"text": "What does a firewall do?", "label": "safe"},
    ])
    results = run_json(capsys, mixed, all_safe, "--batch-size", "4")
    assert [r["file"] for r in results] == [str(mixed), str(all_safe)]
    check_consistent(results[0], len(examples) + len(odd))
    n_responses = sum("response" in r for r in examples)
    assert results[0]["roles"] == {"prompt": len(examples) + len(odd) - n_responses,
                                   "response": n_responses}
    assert results[0]["errors"] == 0
    assert results[0]["n_unsafe"] > 0 and results[0]["per_category_recall"]
    check_consistent(results[1], 3)
    assert results[1]["recall"] is None and results[1]["auprc"] is None


def test_one_megabyte_text_item_is_scored(capsys, tmp_path):
    big = ("The committee reviewed the quarterly budget and approved the plan. " * 16000)[:2**20]
    f = write_jsonl(tmp_path / "big.jsonl", [{"text": big, "label": "safe"},
                                              {"text": "Hello there", "label": "safe"}])
    (result,) = run_json(capsys, f, "--latency-sample", "0")
    assert result["n"] == 2 and result["errors"] == 0 and result["latency_p50_ms"] is None
    assert result["fp"] + result["tn"] == 2


def test_positive_block_is_stricter_than_flag(capsys):
    (flag,) = run_json(capsys, "--examples", "--latency-sample", "3")
    (block,) = run_json(capsys, "--examples", "--positive", "block", "--latency-sample", "3")
    assert flag["positive"] == "flag" and block["positive"] == "block"
    check_consistent(flag, flag["n"])
    check_consistent(block, block["n"])
    # Every block is also "flag or block", and scoring is deterministic.
    assert block["tp"] <= flag["tp"] and block["fp"] <= flag["fp"]
    assert block["auprc"] == flag["auprc"]


def test_role_override(capsys, tmp_path):
    f = write_jsonl(tmp_path / "r.jsonl", [
        {"text": "What is the capital of France?", "response": "Paris.", "label": "safe"},
    ])
    (auto,) = run_json(capsys, f, "--latency-sample", "1")
    (forced,) = run_json(capsys, f, "--role", "prompt", "--latency-sample", "1")
    assert auto["roles"] == {"response": 1} and forced["roles"] == {"prompt": 1}


def test_table_report(capsys, tmp_path):
    f = write_jsonl(tmp_path / "safe.jsonl", [{"text": "Name three primary colours.",
                                               "label": "safe"}])
    assert main(["eval", str(f), "--limit", "1", "--latency-sample", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["file", "n", "unsafe", "prec"]
    row = lines[2].split()
    assert row[0] == str(f) and row[1] == "1" and row[2] == "0"
    assert row[4] == "n/a"  # recall with no unsafe item


def test_examples_in_a_real_process():
    proc = subprocess.run(
        [sys.executable, "-m", "guardstack", "eval", "--examples", "--json", "--limit", "6",
         "--latency-sample", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    check_consistent(result, 6)


def test_a_detector_that_failed_on_every_item_is_exit_1_not_a_measurement(capsys, good):
    # a guard-model server that is down (nothing listens on port 9): every item
    # gets the fail mode's decision, which must not pass for figures
    from tests.fixtures.llama_server import free_port
    code = main(["eval", "--latency-sample", "0", "--backend", "llama-guard-3",
                 "--backend-url", f"http://127.0.0.1:{free_port()}/v1", "--backend-retries", "0",
                 str(good)])
    assert code == 1
    assert "detector failed on every item" in capsys.readouterr().err
