"""``guardstack model-eval`` end to end: bad input without a server, and the
three configurations against the real SmolLM2 llama.cpp server."""

import json

import pytest
from tests.fixtures.llama_server import MODEL_ALIAS, free_port

from guardstack import cli


@pytest.fixture(autouse=True)
def wired(monkeypatch):
    # Until the lead lists the area in cli.AREAS.
    if "guardstack.model.commands" not in cli.AREAS:
        monkeypatch.setattr(cli, "AREAS", (*cli.AREAS, "guardstack.model.commands"))


def test_down_upstream_is_a_clear_error(capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    rc = cli.main(["model-eval", "--upstream", url, "--model", "m"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("guardstack: error: the upstream") and "cannot connect" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--transforms", "rot13"], "unknown transformation"),
    (["--configurations", "model,moon"], "unknown configuration"),
    (["--suite", "SUITE"], "s.jsonl:2: not valid JSON"),
])
def test_bad_arguments_are_clear_errors(tmp_path, capsys, args, message):
    suite_file = tmp_path / "s.jsonl"
    suite_file.write_text('{"id": "a", "text": "hi", "label": "safe"}\n{oops\n')
    args = [str(suite_file) if a == "SUITE" else a for a in args]
    rc = cli.main(["model-eval", "--upstream", "http://127.0.0.1:9/v1", "--model", "m", *args])
    assert rc == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_three_configurations_on_smollm2(llama_server, tmp_path, capsys):
    report = tmp_path / "report"
    argv = ["model-eval", "--upstream", llama_server, "--model", MODEL_ALIAS,
            "--limit", "6", "--max-tokens", "32", "--concurrency", "2",
            "--report", str(report), "--json"]
    assert cli.main(argv) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert "model-eval [" in out.err  # the progress bar
    confs = data["configurations"]
    assert set(confs) == {"model", "system_prompt", "gateway"}
    for block in confs.values():
        assert block["n_harmful"] == 6 and block["n_benign"] == 6
        for rate in ("attack_success_rate", "over_refusal_rate"):
            assert 0.0 <= block[rate] <= 1.0
        assert block["per_category"]
    model, gateway = confs["model"], confs["gateway"]
    # SmolLM2 has no safety training: alone it answers most harmful requests,
    # and it answers benign ones (so the refusal detector is not firing on
    # ordinary answers).
    assert model["compliance_rate"] >= 0.5
    assert model["over_refusal_rate"] <= 0.5
    # Layer 2 acts, and does not make things worse.
    g = gateway["counts"]["harmful"]
    assert g["blocked"] + g["halted"] > 0
    assert gateway["attack_success_rate"] <= model["attack_success_rate"]
    assert gateway["over_refusal_rate"] <= 0.5
    triples = {(b["attack_success_rate"], b["compliance_rate"], b["over_refusal_rate"])
               for b in confs.values()}
    assert len(triples) > 1, "the three configurations gave identical figures"
    for name in ("report.json", "report.md", "report.html", "configurations.png",
                 "asr_by_category.png", "orr_by_category.png", "state.jsonl"):
        assert (report / name).stat().st_size > 0
    # Re-running resumes: nothing is sent again, the figures are the same.
    assert cli.main(argv) == 0
    again = capsys.readouterr()
    assert "resuming, 36/36 already done" in again.err
    assert json.loads(again.out)["configurations"] == confs


@pytest.mark.slow
def test_streamed_answers_through_the_gateway(llama_server, tmp_path, capsys):
    argv = ["model-eval", "--upstream", llama_server, "--model", MODEL_ALIAS,
            "--configurations", "model,gateway", "--stream", "--limit", "2",
            "--max-tokens", "24", "--state", str(tmp_path / "state.jsonl"), "--json"]
    assert cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stream"] is True
    states = [json.loads(line) for line in (tmp_path / "state.jsonl").read_text().splitlines()]
    records = states[1:]
    assert len(records) == 8
    # Streamed answers were assembled from their chunks.
    assert any(r["response"] for r in records if r["config"] == "model")
    assert {r["reply"] for r in records if r["config"] == "gateway"} <= {
        "answer", "blocked", "halted"}
