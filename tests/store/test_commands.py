import argparse
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from guardstack.store import KeyStore, Store
from guardstack.store.commands import add_commands
from guardstack.store.engine import head_revision


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="guardstack")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_db_upgrade_then_keys_add_list_revoke(db_url, capsys):
    assert run(["db", "upgrade", "--db", db_url]) == 0
    assert f"upgraded empty -> {head_revision()}" in capsys.readouterr().out
    assert run(["db", "upgrade", "--db", db_url]) == 0
    assert f"already at revision {head_revision()}" in capsys.readouterr().out

    assert run(["keys", "add", "alice", "--tenant", "acme", "--name", "ci", "--db", db_url]) == 0
    out, err = capsys.readouterr()
    plaintext = out.strip()
    assert plaintext.startswith("gs-") and "shown only now" in err
    store = Store(db_url)
    info = KeyStore(store).lookup(plaintext)
    assert info is not None and info.user == "alice" and info.tenant == "acme"

    assert run(["keys", "list", "--db", db_url]) == 0
    listing = capsys.readouterr().out
    assert info.id in listing and info.prefix in listing and plaintext not in listing

    assert run(["keys", "revoke", info.id, "--db", db_url]) == 0
    assert capsys.readouterr().out.startswith(f"revoked key {info.id}")
    assert KeyStore(store).lookup(plaintext) is None
    # twice: said so, and the first revocation's time is kept
    first = KeyStore(store).get(info.id).revoked_at
    assert run(["keys", "revoke", info.id, "--db", db_url]) == 0
    assert "was already revoked" in capsys.readouterr().out
    assert KeyStore(store).get(info.id).revoked_at == first
    store.dispose()


def test_a_platform_key_is_issued_to_name_its_end_users(db_url, capsys):
    assert run(["keys", "add", "webui", "--end-users", "--db", db_url]) == 0
    out, err = capsys.readouterr()
    assert "name their end users" in err
    assert run(["keys", "add", "alice", "--db", db_url]) == 0
    plain = capsys.readouterr().out.strip()
    store = Store(db_url)
    platform, person = KeyStore(store).lookup(out.strip()), KeyStore(store).lookup(plain)
    assert platform is not None and platform.end_users
    assert person is not None and not person.end_users
    assert run(["keys", "list", "--db", db_url]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert "END USERS" in header
    column = header.index("END USERS")
    assert {r.split()[2]: r[column:column + 3] for r in rows} == {"webui": "yes", "alice": "-  "}
    store.dispose()


def test_accounts_commands(store, capsys):
    url = store.url
    assert (
        run(
            [
                "accounts",
                "set",
                "bob",
                "suspended",
                "--reason",
                "abuse",
                "--actor",
                "kim",
                "--db",
                url,
            ]
        )
        == 0
    )
    action_id = int(capsys.readouterr().out.split()[0])
    assert run(["accounts", "reverse", str(action_id), "--reason", "appeal", "--db", url]) == 0
    capsys.readouterr()
    assert run(["accounts", "show", "bob", "--db", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bob: none")
    assert "none -> suspended  by kim: abuse" in out and f"(reverses {action_id})" in out


def test_purge_command(store, capsys):
    assert run(["purge", "--older-than", "30d", "--db", store.url]) == 0
    assert "deleted 0 exchanges, 0 messages and 0 stored responses" in capsys.readouterr().out
    assert run(["purge", "--older-than", "soon", "--db", store.url]) == 2
    assert "guardstack: error: not an age: 'soon'" in capsys.readouterr().err
    assert run(["purge", "--older-than", "999999999d", "--db", store.url]) == 2
    assert "at most 36525 days" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("db", "needle"),
    [
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql://u:hunter2@127.0.0.1:1/db", "cannot use database"),
        ("sqlite:////no/such/dir/g.db", "does not exist"),
    ],
)
def test_bad_db_url_is_one_clear_line(db, needle, capsys):
    assert run(["keys", "list", "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.startswith("guardstack: error: ") and needle in err
    assert "Traceback" not in err and "hunter2" not in err
    assert err.count("\n") == 1


def test_first_key_on_a_new_database_creates_the_schema(tmp_path, capsys):
    db = f"sqlite:///{tmp_path}/fresh.db"
    assert run(["keys", "add", "alice", "--db", db]) == 0
    assert capsys.readouterr().out.strip()
    assert Store(db).current_revision() == head_revision()


def test_database_at_an_older_revision_says_how_to_fix(tmp_path, capsys):
    db = f"sqlite:///{tmp_path}/old.db"
    assert run(["db", "upgrade", "--db", db]) == 0
    store = Store(db)
    with store.engine.begin() as conn:  # as if made by an older guardstack
        conn.execute(sa.text("UPDATE guardstack_schema_version SET version_num = '0001'"))
    store.dispose()
    capsys.readouterr()
    assert run(["keys", "add", "alice", "--db", db]) == 2
    assert "run `guardstack db upgrade --db" in capsys.readouterr().err


def test_cli_process_reports_bad_url_without_traceback(tmp_path):
    # The real entry point, in a fresh process, as a user would run it.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "guardstack.cli",
            "db",
            "upgrade",
            "--db",
            "postgresql://u@127.0.0.1:1/db",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("guardstack: error: cannot use database")
    assert "Traceback" not in proc.stderr


def test_keys_get_their_own_rate_limit_from_the_command_line(db_url, capsys):
    assert run(["keys", "add", "batch-job", "--rate-limit", "50", "--rate-burst", "200",
                "--db", db_url]) == 0
    out, err = capsys.readouterr()
    assert "50/s, burst 200" in err
    store = Store(db_url)
    info = KeyStore(store).lookup(out.strip())
    assert info is not None and (info.rate_limit, info.rate_burst) == (50.0, 200)
    assert run(["keys", "list", "--db", db_url]) == 0
    assert "RATE LIMIT" in capsys.readouterr().out
    assert run(["keys", "limit", info.id, "--rate-limit", "60", "--db", db_url]) == 0
    # the burst not given stays as it was
    assert (KeyStore(store).get(info.id).rate_limit, KeyStore(store).get(info.id).rate_burst) \
        == (60.0, 200)
    assert "60/s, burst 200" in capsys.readouterr().out
    assert run(["keys", "limit", info.id, "--rate-limit", "0", "--db", db_url]) == 0
    assert "no limit" in capsys.readouterr().out
    assert run(["keys", "limit", info.id, "--clear", "--db", db_url]) == 0
    assert "the gateway rate limit" in capsys.readouterr().out
    assert KeyStore(store).get(info.id).rate_limit is None
    # Bad input: a clear message, exit 2, nothing changed.
    assert run(["keys", "limit", info.id, "--db", db_url]) == 2
    assert "--rate-limit" in capsys.readouterr().err
    assert run(["keys", "limit", info.id, "--rate-burst", "0", "--db", db_url]) == 2
    assert "burst" in capsys.readouterr().err
    assert run(["keys", "limit", "no-such-key", "--rate-limit", "1", "--db", db_url]) == 2
    store.dispose()


def test_db_status_of_a_missing_sqlite_file_creates_nothing(tmp_path, capsys):
    path = tmp_path / "new.db"
    assert run(["db", "status", "--db", f"sqlite:///{path}"]) == 0
    assert "no such database file" in capsys.readouterr().out
    assert not path.exists()
    Store(f"sqlite:///{path}").migrate()
    assert run(["db", "status", "--db", f"sqlite:///{path}"]) == 0
    assert f"revision {head_revision()}" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["keys", "list"], ["accounts", "show", "bob"],
                                  ["cases", "list"], ["audit"], ["users", "list"]])
def test_a_command_that_reads_leaves_no_empty_database_behind(tmp_path, capsys, argv):
    # a mistyped --db: refused, not answered from an empty database made on the spot
    path = tmp_path / "typo.db"
    from guardstack.cli import main
    assert main([*argv, "--db", f"sqlite:///{path}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not path.exists()
