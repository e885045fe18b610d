import json
from pathlib import Path

import pytest

from guardstack import cli

AREA = "guardstack.simulate.commands"


@pytest.fixture(autouse=True)
def wired(monkeypatch):
    # Until the lead lists the area in cli.AREAS, wire it here; afterwards this is a no-op.
    if AREA not in cli.AREAS:
        monkeypatch.setattr(cli, "AREAS", (*cli.AREAS, AREA))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(["simulate", *argv])
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_out_writes_jsonl_and_truth_beside_it(tmp_path, capsys):
    out = tmp_path / "traffic.jsonl"
    code, stdout, _ = run(capsys, "--users", "30", "--days", "5", "--seed", "9", "--out", str(out))
    assert code == 0
    truth = json.loads((tmp_path / "traffic.truth.json").read_text())
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    said = [line for line in lines if line["role"] == "user"]
    assert len(said) == truth["messages"] > 0
    assert {line["user"] for line in lines} <= set(truth["users"])
    # each agent turn is followed by the page its assistant read, for ingest's injection check
    pages = [line for line in lines if line["role"] == "tool"]
    readers = [u for u, info in truth["users"].items() if "agent" in info]
    assert len(pages) == len(readers) > 0
    for page in pages:
        turn = next(line for line in said if f"{line['id']}-page" == page["id"])
        assert (turn["user"], turn["session"]) == (page["user"], page["session"])
        assert turn["ts"] < page["ts"] and page["tool"]["url"] in turn["content"]
    assert "30 users" in stdout and str(out) in stdout


def test_same_seed_is_byte_identical_and_another_seed_is_not(tmp_path, capsys):
    paths = []
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        path = tmp_path / f"{name}.jsonl"
        assert run(capsys, "--users", "40", "--days", "7", "--seed", seed, "--out",
                   str(path))[0] == 0
        paths.append(path)
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b
    assert a != c
    assert (tmp_path / "a.truth.json").read_bytes() == (tmp_path / "b.truth.json").read_bytes()


def test_truth_path_json_summary_start_and_mix(tmp_path, capsys):
    out, truth_path = tmp_path / "t.jsonl", tmp_path / "labels" / "truth.json"
    code, stdout, _ = run(capsys, "--users", "20", "--days", "2", "--out", str(out),
                          "--truth", str(truth_path), "--start", "2025-12-31T22:00:00-05:00",
                          "--mix", "ordinary=0,professional=0,adversary=1,crisis=1,"
                          "decomposition=0,crescendo=0,jailbreak=0,coordinated=0,delusion=0",
                          "--model", "llama-3", "--json")
    assert code == 0
    summary = json.loads(stdout)
    assert summary["labels"]["at_risk"] == 20 and summary["truth"] == str(truth_path)
    truth = json.loads(truth_path.read_text())
    assert truth["start"] == "2025-12-31T22:00:00-05:00"
    first = json.loads(out.read_text().splitlines()[0])
    assert first["model"] == "llama-3"


@pytest.mark.parametrize(("argv", "message"), [
    (["--out", "x.jsonl", "--start", "2026-01-01T00:00:00"], "has no time zone"),
    (["--out", "x.jsonl", "--start", "yesterday"], "expected an ISO-8601 time"),
    (["--out", "x.jsonl", "--start", "9999-12-31T00:00:00+00:00"], "out of range"),
    (["--out", "x.jsonl", "--users", "0"], "must be at least 1"),
    (["--out", "x.jsonl", "--days", "two"], "expected a whole number"),
    (["--out", "x.jsonl", "--mix", "robots=1"], "bad mix entry"),
    (["--out", "x.jsonl", "--mix", "ordinary=lots"], "is not a number"),
    (["--out", "x.jsonl", "--agents", "2"], "expected a share in [0, 1]"),
    (["--out", "x.jsonl", "--agents", "some"], "expected a share in [0, 1]"),
    (["--users", "3"], "one of the arguments --out --gateway --db is required"),
    (["--out", "x.jsonl", "--gateway", "http://x"], "not allowed with argument"),
])
def test_bad_arguments_are_usage_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--db", "sqlite:///x.db", "--stream"], "--stream and --api go with --gateway"),
    (["--db", "mysql://nobody@127.0.0.1:1/x"], "unsupported database 'mysql'"),
    (["--out", "x.jsonl", "--transcript", "t.jsonl"], "--transcript goes with --gateway"),
    (["--out", "x.jsonl", "--stream"], "--stream and --api go with --gateway"),
    (["--out", "x.jsonl", "--max-tokens", "8"], "--max-tokens, --stream and --api go with"),
    (["--out", "x.jsonl", "--api", "responses"], "--stream and --api go with --gateway"),
    (["--gateway", "localhost:8000"], "must be an http(s) URL"),
    (["--out", "x.jsonl", "--mix", "ordinary=0,professional=0,adversary=0"], "all 0"),
])
def test_unusable_settings_are_one_line_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "--users", "5", *argv)
    assert code == 2
    assert err.startswith("guardstack: error: ") and message in err
    assert err.count("\n") == 1


def test_db_loads_the_user_turns_scored_and_a_second_run_adds_nothing(tmp_path, capsys):
    import sqlalchemy as sa

    from guardstack.store import Store
    from guardstack.store.schema import exchanges, messages

    db = f"sqlite:///{tmp_path / 'sim.db'}"
    argv = ("--users", "6", "--seed", "3", "--days", "4")
    code, stdout, _ = run(capsys, *argv, "--db", db, "--truth", str(tmp_path / "t.json"), "--json")
    assert code == 0
    summary = json.loads(stdout)
    truth = json.loads((tmp_path / "t.json").read_text())
    pages = sum("agent" in info for info in truth["users"].values())
    assert summary["db"]["loaded"] == summary["messages"] + pages and pages > 0
    assert truth["messages"] == summary["messages"]
    # the same turns --out writes, each scored and embedded as `guardstack ingest` stores it
    # (the pages agents read are checked for planted words, not stored as messages)
    run(capsys, *argv, "--out", str(tmp_path / "t.jsonl"))
    written = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()
               if json.loads(line)["role"] == "user"]
    store = Store(db)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(messages.c.content, messages.c.user_id,
                                          messages.c.decision, messages.c.embedding)).all()
            endpoints = set(conn.execute(sa.select(exchanges.c.endpoint)).scalars())
    finally:
        store.dispose()
    assert sorted((r.content, r.user_id) for r in rows) == \
        sorted((w["content"], w["user"]) for w in written)
    assert endpoints == {"ingest"} and len(rows) == summary["messages"]
    assert all(r.decision in ("allow", "flag", "block") and r.embedding for r in rows)
    code, stdout, _ = run(capsys, *argv, "--db", db, "--json")
    again = json.loads(stdout)["db"]
    assert code == 0 and again["loaded"] == 0
    assert again["already_present"] == summary["db"]["loaded"]


def test_unwritable_output_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run(capsys, "--users", "5", "--out", str(blocker / "t.jsonl"))
    assert code == 2
    assert err.startswith("guardstack: error: cannot write")


def test_unreachable_gateway_is_a_clear_error(capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run(capsys, "--users", "3", "--days", "1", "--gateway",
                       f"http://127.0.0.1:{port}/v1")
    assert code == 2
    assert "no request to" in err and "APIConnectionError" in err


def test_gateway_mode_writes_truth_and_transcript(tmp_path, capsys, stub_server):
    truth_path, transcript = tmp_path / "truth.json", tmp_path / "transcript.jsonl"
    _, url = stub_server(block="no rules", throttle=True)
    code, stdout, _ = run(capsys, "--users", "8", "--days", "2", "--seed", "1",
                          "--gateway", f"{url}/v1", "--api-key", "sk-x",
                          "--truth", str(truth_path), "--transcript", str(transcript))
    assert code == 0
    assert "gateway: sent" in stdout
    truth = json.loads(truth_path.read_text())
    records = [json.loads(line) for line in transcript.read_text().splitlines()]
    questions = [r for r in records if r["role"] == "user"]
    answers = [r for r in records if r["role"] == "assistant"]
    assert len(questions) == truth["messages"] == truth["gateway"]["sent"]
    assert len(answers) == truth["gateway"]["answered"]
    assert set(truth["gateway"]["blocked_message_ids"]) <= {q["id"] for q in questions}
    for answer in answers:
        question = next(q for q in questions if q["id"] == answer["id"][:-2])
        assert question["session"] == answer["session"] and question["ts"] < answer["ts"]
    by_session: dict[str, list[str]] = {}
    for r in records:
        by_session.setdefault(r["session"], []).append(r["ts"])
    for stamps in by_session.values():
        assert stamps == sorted(stamps)


def test_help_documents_every_option(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for option in ("--users", "--days", "--seed", "--start", "--mix", "--model", "--out",
                   "--gateway", "--db", "--truth", "--api-key", "--concurrency", "--transcript",
                   "--json"):
        assert option in out
    docs = (Path(__file__).parents[2] / "docs" / "simulate.md").read_text()
    for option in ("--users", "--days", "--seed", "--start", "--mix", "--model", "--out",
                   "--gateway", "--db", "--truth", "--api-key", "--concurrency", "--transcript",
                   "--json"):
        assert f"`{option}" in docs, option


def test_output_does_not_depend_on_the_process_hash_seed(tmp_path):
    import os
    import subprocess
    import sys

    script = ("import sys; from guardstack import cli; "
              f"cli.AREAS = (*cli.AREAS, {AREA!r}) if {AREA!r} not in cli.AREAS else cli.AREAS; "
              "sys.exit(cli.main(['simulate', '--users', '80', '--days', '5', '--seed', '2', "
              "'--out', sys.argv[1]]))")
    outputs = []
    for hash_seed in ("1", "4242"):
        out = tmp_path / f"h{hash_seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env,
                       capture_output=True, timeout=120)
        outputs.append((out.read_bytes(), out.with_name(f"h{hash_seed}.truth.json").read_bytes()))
    assert outputs[0] == outputs[1]


def test_the_start_times_zone_hint_is_itself_accepted():
    import argparse
    import re

    from guardstack.simulate.commands import _start

    with pytest.raises(argparse.ArgumentTypeError) as err:
        _start("2026-03-02")
    [hint] = re.findall(r"e\.g\. (\S+)$", str(err.value))
    assert _start(hint).isoformat() == "2026-03-02T00:00:00+00:00"
