import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from guardstack.store import Store, StoreError, normalize_url
from guardstack.store.engine import head_revision
from guardstack.store.schema import metadata

TABLES = {"exchanges", "messages", "api_keys", "account_states", "account_actions", "audit_log"}


def test_postgres_urls_use_psycopg3():
    assert normalize_url("postgresql://u:pw@db:5432/gs") == "postgresql+psycopg://u:pw@db:5432/gs"
    assert normalize_url("postgres://u@db/gs") == "postgresql+psycopg://u@db/gs"
    assert normalize_url("postgresql+psycopg://u@db/gs") == "postgresql+psycopg://u@db/gs"


def test_bare_path_is_sqlite(tmp_path):
    assert normalize_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql+asyncpg://u@h/db", "unsupported PostgreSQL driver"),
        ("sqlite+aiosqlite:///x.db", "unsupported SQLite driver"),
        ("://x", "not a database URL"),
        ("postgresql://u:hunter2@h:notaport/db", r"not a database URL: 'postgresql://u:\*\*\*@h"),
        # each command opens its own connection: an in-memory database keeps nothing
        ("sqlite://", "in-memory SQLite database"),
        ("sqlite:///", "in-memory SQLite database"),
        ("sqlite:///:memory:", "in-memory SQLite database"),
    ],
)
def test_bad_urls_are_clear_errors(url, needle):
    with pytest.raises(StoreError, match=needle):
        Store(url)


def test_missing_sqlite_directory_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(f"sqlite:///{tmp_path}/no/such/dir/g.db")


def test_unreachable_postgres_is_a_clear_error():
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    store = Store("postgresql://nobody:hunter2@127.0.0.1:1/gs")
    with pytest.raises(StoreError, match="cannot use database") as err:
        store.migrate()
    assert "hunter2" not in str(err.value)


def test_migrate_creates_schema_from_empty_database(db_url):
    store = Store(db_url)
    assert store.current_revision() is None
    assert store.migrate() == head_revision() is not None
    names = set(sa.inspect(store.engine).get_table_names())
    assert names >= TABLES
    store.dispose()


def test_migrate_again_is_a_no_op(store):
    before = set(sa.inspect(store.engine).get_table_names())
    assert store.migrate() == head_revision()
    assert set(sa.inspect(store.engine).get_table_names()) == before


def test_migrations_match_schema_module(store):
    # schema.py and versions/*.py describe the same tables; a change to one
    # without the other shows up here as a diff.
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": "guardstack_schema_version"}
        )
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_require_current_names_the_fix(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(StoreError, match="guardstack db upgrade"):
        store.require_current()
    store.migrate()
    store.require_current()
    store.dispose()
