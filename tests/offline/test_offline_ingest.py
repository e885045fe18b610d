"""guardstack ingest: validation, all-or-nothing, resumable, idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from guardstack.offline.ingest import IngestError, ingest
from guardstack.store import Store
from guardstack.store.schema import exchanges, ingest_runs, messages


def _line(**over: object) -> str:
    base = {"user": "alice", "session": "s1", "ts": "2026-03-02T10:00:00+00:00",
            "role": "user", "content": "How do I bake sourdough bread?"}
    base.update(over)
    return json.dumps(base)


def _count(store: Store, table: sa.Table = messages) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_loads_scores_and_embeds_into_the_gateway_tables(empty_store, tmp_path):
    path = _write(tmp_path, [
        _line(),
        _line(role="assistant", content="Start with a levain.", ts="2026-03-02T10:00:05Z",
              tenant="acme", model="m1", id="given-id-1"),
    ])
    report = ingest(empty_store, path, progress=False)
    assert (report.loaded, report.bad_lines) == (2, 0)
    with empty_store.engine.connect() as conn:
        rows = conn.execute(sa.select(messages).order_by(messages.c.ts)).mappings().all()
        ex = conn.execute(sa.select(exchanges).where(exchanges.c.id == "given-id-1")).one()
    assert [r["role"] for r in rows] == ["user", "assistant"]
    assert all(r["embedding"] and r["embedding_dim"] for r in rows)
    assert all("harm" in r["scores"] for r in rows)
    assert rows[0]["conversation_id"] == "s1" and rows[0]["user_id"] == "alice"
    assert ex.tenant_id == "acme" and ex.model == "m1" and ex.endpoint == "ingest"


def test_reject_loads_nothing_and_names_every_bad_line(empty_store, tmp_path):
    path = _write(tmp_path, [
        _line(),
        "{not json",
        _line(role="robot"),
        _line(ts="2026-03-02T10:00:00"),
        _line(content=None),
        "[1, 2]",
        _line(ts="9999-12-31T23:59:59-05:00"),
    ])
    with pytest.raises(IngestError) as err:
        ingest(empty_store, path, progress=False)
    text = str(err.value)
    for number, needle in [(2, "not valid JSON"), (3, "unknown role 'robot'"),
                           (4, "ts '2026-03-02T10:00:00' has no time zone"),
                           (5, "missing field(s): content"), (6, "expected a JSON object"),
                           (7, "ts '9999-12-31T23:59:59-05:00' is out of range")]:
        assert f"line {number}: {needle}" in text
    assert "nothing loaded" in text
    assert _count(empty_store) == 0


def test_skip_loads_the_good_lines_and_reports_the_rest(empty_store, tmp_path):
    path = _write(tmp_path, [_line(), _line(role="robot"), _line(content="second", ts="bad")])
    report = ingest(empty_store, path, on_error="skip", progress=False)
    assert report.loaded == 1
    assert [n for n, _ in report.errors] == [2, 3]
    assert _count(empty_store) == 1


def test_assume_utc_reads_naive_times_as_utc(empty_store, tmp_path):
    path = _write(tmp_path, [_line(ts="2026-03-02T10:00:00")])
    ingest(empty_store, path, assume_utc=True, progress=False)
    with empty_store.engine.connect() as conn:
        ts = conn.execute(sa.select(messages.c.ts)).scalar_one()
    assert ts.isoformat() == "2026-03-02T10:00:00+00:00"


def test_running_again_adds_nothing(empty_store, tmp_path):
    path = _write(tmp_path, [_line(), _line(content="Another question about rye flour.")])
    ingest(empty_store, path, progress=False)
    again = ingest(empty_store, path, progress=False)
    assert (again.loaded, again.already_present) == (0, 2)
    assert _count(empty_store) == 2 and _count(empty_store, exchanges) == 2


def test_duplicate_lines_load_once(empty_store, tmp_path):
    path = _write(tmp_path, [_line(), _line(), _line(id="x"), _line(id="x")])
    report = ingest(empty_store, path, progress=False)
    assert (report.loaded, report.duplicates) == (2, 2)


def test_one_id_on_two_different_messages_is_a_bad_line_not_a_duplicate(empty_store, tmp_path):
    # Counting it a duplicate would drop the second message (another user's) unseen.
    path = _write(tmp_path, [_line(id="x"), _line(id="x", user="bob", content="other")])
    with pytest.raises(IngestError) as err:
        ingest(empty_store, path, progress=False)
    assert "line 2: id 'x' is already line 1's, a different message" in str(err.value)
    report = ingest(empty_store, path, on_error="skip", progress=False)
    assert (report.loaded, report.duplicates, [n for n, _ in report.errors]) == (1, 0, [2])


def test_interrupted_run_resumes_without_duplicates(empty_store, tmp_path):
    lines = [_line(content=f"Question number {i} about bread.", ts=f"2026-03-02T10:{i:02d}:00Z")
             for i in range(10)]
    path = _write(tmp_path, lines)
    with pytest.raises(KeyboardInterrupt):
        ingest(empty_store, path, batch_size=3, interrupt_after=2, progress=False)
    assert _count(empty_store) == 6
    with empty_store.engine.connect() as conn:
        assert conn.execute(sa.select(ingest_runs.c.status)).scalar_one() == "interrupted"
    report = ingest(empty_store, path, batch_size=3, progress=False)
    assert (report.loaded, report.already_present) == (4, 6)
    assert _count(empty_store) == 10
    with empty_store.engine.connect() as conn:
        run = conn.execute(sa.select(ingest_runs)).mappings().one()
    assert run["status"] == "done" and run["lines"] == 10


def test_analysis_over_an_unfinished_load_says_so(empty_store, tmp_path, cli, capsys):
    lines = [_line(content=f"Question number {i} about bread.", ts=f"2026-03-02T10:{i:02d}:00Z")
             for i in range(10)]
    path = _write(tmp_path, lines)
    with pytest.raises(KeyboardInterrupt):
        ingest(empty_store, path, batch_size=3, interrupt_after=2, progress=False)
    assert cli(["analyze", "--db", empty_store.url, "--quiet", "--json"]) == 0
    out, err = capsys.readouterr()
    assert f"the load of {path} did not finish (interrupted, 6 of 10 lines stored)" in err
    [run] = json.loads(out)["unfinished_loads"]
    assert (run["status"], run["stored"], run["lines"]) == ("interrupted", 6, 10)
    # finished: no note any more
    ingest(empty_store, path, batch_size=3, progress=False)
    assert cli(["analyze", "--db", empty_store.url, "--quiet", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "did not finish" not in err and "unfinished_loads" not in json.loads(out)


def test_out_of_order_timestamps_are_kept_and_counted(empty_store, tmp_path):
    path = _write(tmp_path, [_line(ts="2026-03-02T11:00:00Z"),
                             _line(ts="2026-03-02T10:00:00Z", content="earlier")])
    report = ingest(empty_store, path, progress=False)
    assert (report.loaded, report.out_of_order) == (2, 1)


def test_cli_reports_bad_lines_without_a_traceback(tmp_path, cli, capsys):
    path = _write(tmp_path, [_line(), _line(role="moderator")])
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert cli(["ingest", str(path), "--db", db, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("guardstack: error:") and "line 2: unknown role" in err
    assert "Traceback" not in err
    assert cli(["ingest", str(path), "--db", db, "--quiet", "--on-error", "skip"]) == 0
    captured = capsys.readouterr()
    assert "loaded 1 of 2 lines" in captured.out and ":2: skipped" in captured.err


def test_cli_missing_file_is_a_clear_error(tmp_path, cli, capsys):
    assert cli(["ingest", str(tmp_path / "nope.jsonl"), "--db",
                f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_a_folder_or_an_empty_file_is_a_clear_error(tmp_path, cli, capsys):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert cli(["ingest", str(tmp_path), "--db", db]) == 2
    assert "is a folder" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert cli(["ingest", str(empty), "--db", db]) == 2
    assert "is empty" in capsys.readouterr().err


def test_a_byte_order_mark_is_read_past_and_bad_lines_say_where(empty_store, tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + _line().encode() + b"\n"
                     + _line(content="cut short").encode()[:-1] + b"\n"
                     + b'{"user": "u", "content": "\xff"}\n')
    report = ingest(empty_store, path, on_error="skip", progress=False)
    assert report.loaded == 1  # the first line, behind its byte-order mark
    errors = dict(report.errors)
    cut = len(_line(content="cut short")) - 1
    assert f"at column {cut}" in errors[2] or f"at column {cut + 1}" in errors[2], errors[2]
    assert "not UTF-8 text (byte 26 of the line)" in errors[3], errors[3]


def test_content_over_the_limit_is_a_bad_line(empty_store, tmp_path):
    from guardstack.offline.ingest import MAX_CONTENT_BYTES

    path = _write(tmp_path, [_line(), _line(content="x" * (MAX_CONTENT_BYTES + 1))])
    report = ingest(empty_store, path, on_error="skip", progress=False)
    assert report.loaded == 1
    [(number, error)] = report.errors
    assert number == 2 and "over the limit" in error
