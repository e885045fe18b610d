"""``guardstack users`` and ``guardstack dashboard`` as a user runs them."""

from __future__ import annotations

import io

import pytest

from guardstack.cli import main
from guardstack.dashboard.passwords import verify_password
from guardstack.store import Store


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'users.db'}"


def _stdin(monkeypatch, text):
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_users_add_reads_the_password_from_stdin(db, monkeypatch, capsys):
    _stdin(monkeypatch, "s3cret-enough\n")
    assert main(["users", "add", "alice", "--role", "reviewer", "--db", db]) == 0
    assert "added reviewer alice" in capsys.readouterr().out
    import sqlalchemy as sa

    from guardstack.store.schema import dashboard_users

    store = Store(db)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(dashboard_users.c.password_hash)).scalar_one()
    store.dispose()
    assert "s3cret-enough" not in stored and stored.startswith("scrypt$")
    assert verify_password("s3cret-enough", stored)
    assert not verify_password("s3cret-enougH", stored)
    assert main(["users", "list", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "alice" in out and "reviewer" in out and "s3cret" not in out


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (["alice", "--role", "reviewer"], "", "no password on standard input"),
    (["alice", "--role", "reviewer"], "short\n", "at least 8 characters"),
    (["bad name!", "--role", "reviewer"], "long-enough-pw\n", "invalid account name"),
])
def test_users_add_bad_input_is_a_clear_error(db, monkeypatch, capsys, argv, stdin, message):
    _stdin(monkeypatch, stdin)
    assert main(["users", "add", *argv, "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.startswith("guardstack: error: ") and message in err


def test_users_add_unknown_role_and_duplicates(db, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["users", "add", "bob", "--role", "superuser", "--db", db])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    _stdin(monkeypatch, "long-enough-pw\n")
    assert main(["users", "add", "bob", "--role", "analyst", "--db", db]) == 0
    _stdin(monkeypatch, "long-enough-pw\n")
    assert main(["users", "add", "bob", "--role", "admin", "--db", db]) == 2
    assert "already exists" in capsys.readouterr().err


def test_users_remove(db, monkeypatch, capsys):
    _stdin(monkeypatch, "long-enough-pw\n")
    assert main(["users", "add", "carol", "--role", "admin", "--db", db]) == 0
    assert main(["users", "remove", "carol", "--db", db]) == 0
    assert main(["users", "remove", "carol", "--db", db]) == 2
    assert "no dashboard account 'carol'" in capsys.readouterr().err


def test_commands_name_an_outdated_schema(tmp_path, capsys):
    import sqlalchemy as sa

    from guardstack.store.engine import VERSION_TABLE

    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0002'"))
    store.dispose()
    assert main(["users", "list", "--db", url]) == 2
    assert "guardstack db upgrade" in capsys.readouterr().err


def test_dashboard_rejects_a_bad_port(db, capsys):
    assert main(["dashboard", "--db", db, "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_dashboard_command_serves_the_ui(db, monkeypatch):
    import subprocess
    import sys
    import time

    import httpx
    from tests.fixtures.llama_server import free_port

    _stdin(monkeypatch, "long-enough-pw\n")
    assert main(["users", "add", "dora", "--role", "analyst", "--db", db]) == 0
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "guardstack", "dashboard", "--db", db,
                             "--port", str(port), "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                r = httpx.get(base + "/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "dashboard did not start"
                time.sleep(0.2)
        assert r.status_code == 307 and r.headers["location"] == "/ui/"
        r = httpx.get(base + "/ui/queue", timeout=5)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
        r = httpx.get(base + "/ui/login", timeout=5)
        assert r.status_code == 200 and 'name="login_token"' in r.text
        vendor = httpx.get(base + "/ui/static/vendor/chart.umd.min.js", timeout=5)
        assert vendor.status_code == 200 and "Chart" in vendor.text[:5000]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.parametrize("command", [["users", "list"], ["dashboard"]])
def test_a_store_in_a_missing_folder_is_one_error_line(tmp_path, capsys, command):
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'x.db'}"
    assert main([*command, "--db", url]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "does not exist" in err


def test_dashboard_on_a_taken_port_says_so_before_announcing_an_address(db, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dashboard", "--db", db, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "review dashboard on" not in err


def test_cases_are_listed_and_decided_from_the_command_line(seeded, capsys):
    import json

    assert main(["cases", "list", "--db", seeded.url]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0].split()[:3] == ["CASE", "KIND", "SEVERITY"]
    # most severe first, subjects pseudonymous (no raw user id printed)
    assert lines[1].startswith(seeded.case_id) and lines[2].startswith(seeded.second_case)
    assert seeded.user not in out.out and "2 open case(s)" in out.err
    assert main(["cases", "decide", seeded.second_case, "dismiss", "--note",
                 "a recipe question", "--reviewer", "kim", "--db", seeded.url]) == 0
    assert capsys.readouterr().out.strip() == f"{seeded.second_case}: open -> dismissed"
    assert main(["cases", "list", "--status", "dismissed", "--json", "--db", seeded.url]) == 0
    [case] = json.loads(capsys.readouterr().out)["cases"]
    assert case["id"] == seeded.second_case and case["reviewer"] == "kim"
    # the decision is in the audit log, which the command line reads too
    assert main(["audit", "--actor", "kim", "--json", "--db", seeded.url]) == 0
    [entry] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert entry["action"] == "case.dismiss" and entry["detail"]["note"] == "a recipe question"
    assert main(["cases", "decide", "case-nope", "confirm", "--note", "x",
                 "--db", seeded.url]) == 2
    assert "no case 'case-nope'" in capsys.readouterr().err
    for command in (["audit"], ["cases", "list"]):  # pages count from 1
        with pytest.raises(SystemExit):
            main([*command, "--page", "0", "--db", seeded.url])
        assert "--page: must be at least 1" in capsys.readouterr().err
