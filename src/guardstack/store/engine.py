"""Database URLs, engines and migrations: the :class:`Store` handle.

SQLite is the embedded default (``sqlite:///guardstack.db``); PostgreSQL is
chosen by URL (``postgresql://user:pw@host:5432/db``) and always driven by
psycopg 3. A bare filesystem path is taken as a SQLite file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from guardstack.store.errors import StoreError, describe, display_url

DEFAULT_PATH = "guardstack.db"
DEFAULT_URL = f"sqlite:///{DEFAULT_PATH}"
#: Environment variable the CLI and gateway read when no URL is given.
ENV_URL = "GUARDSTACK_DB"
VERSION_TABLE = "guardstack_schema_version"
# Any constant works; it only has to be the same in every process.
_PG_MIGRATE_LOCK = 0x6775617264  # "guard"


def default_url() -> str:
    return os.environ.get(ENV_URL) or DEFAULT_URL


def normalize_url(url: str | None) -> str:
    """Return a SQLAlchemy URL for ``url``, or raise :class:`StoreError`.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://``
    (psycopg 3, the only PostgreSQL driver we ship); a plain path becomes a
    SQLite URL.
    """
    if url is None or not url.strip():
        url = default_url()
    url = url.strip()
    if "://" not in url:
        return f"sqlite:///{url}"
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError):
        masked = re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)
        raise StoreError(f"not a database URL: {masked!r}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend == "postgresql":
        if driver not in ("", "psycopg"):
            raise StoreError(
                f"unsupported PostgreSQL driver {driver!r} in {display_url(url)}: "
                "use postgresql:// (psycopg 3)"
            )
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise StoreError(f"unsupported SQLite driver {driver!r} in {display_url(url)}")
        if parsed.database in (None, "", ":memory:"):
            # Every command opens its own connection: an in-memory database is
            # gone when it closes, and what it said it stored with it.
            raise StoreError(f"{url!r} is an in-memory SQLite database, which keeps nothing; "
                             "give a file: sqlite:///guardstack.db")
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    raise StoreError(
        f"unsupported database {backend!r} in {display_url(url)}: "
        "use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the dashboard and layer 3 read while the writer writes.
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit survives power loss too. The spool is deleted once its
    # events are committed, so a weaker setting could lose them. Batching
    # keeps the cost at one fsync per batch.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def missing_sqlite_file(url: str | None) -> str | None:
    """The path of a SQLite database ``url`` names that does not exist yet
    (connecting would create it), else None."""
    parsed = make_url(normalize_url(url or default_url()))
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") \
            or parsed.query.get("mode") == "memory":
        return None
    return None if Path(database).expanduser().exists() else database


def require_existing(url: str | None) -> None:
    """Raise :class:`StoreError` for a SQLite file that does not exist: for
    commands that only read, connecting would leave an empty database behind
    and answer from it (a mistyped ``--db``, most often)."""
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise StoreError(f"database file {missing} does not exist: nothing was stored there "
                         "(is --db right? the gateway, ingest, simulate and `guardstack db "
                         "upgrade` create it)")


def create_engine(url: str | None = None, **kwargs: Any) -> sa.Engine:
    """An engine for ``url`` (normalised) with the settings the store relies on."""
    full = normalize_url(url)
    parsed: URL = make_url(full)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
        if memory:
            # One shared connection, or every thread would see its own empty DB.
            kwargs.setdefault("poolclass", StaticPool)
        else:
            parent = Path(database).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(
                    f"cannot use database {display_url(full)}: directory {parent} does not exist"
                )
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 15})
        engine = sa.create_engine(full, **kwargs)
        if not memory:
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = dict(kwargs.pop("connect_args", {}))
    if "connect_timeout" not in parsed.query:
        connect_args.setdefault("connect_timeout", 5)
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(full, connect_args=connect_args, **kwargs)


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "guardstack.store:migrations")
    return cfg


def head_revision() -> str | None:
    """The newest revision this guardstack ships."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def upgrade(engine: sa.Engine) -> None:
    """``alembic upgrade head`` on ``engine``; SQLAlchemy errors propagate as
    they are (the writer needs to tell an outage from a real failure)."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two gateway workers starting together must not both create tables.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATE_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    """One database: its engine, plus migrations.

    ``Store(url)`` does not connect; :meth:`migrate` or :meth:`check` do.
    Pass the same ``Store`` to :class:`~guardstack.store.EventWriter`,
    :class:`~guardstack.store.KeyStore` and
    :class:`~guardstack.store.Accounts` to share one connection pool.
    """

    def __init__(self, url: str | None = None, *, engine: sa.Engine | None = None) -> None:
        self.url = normalize_url(url)
        self.engine = engine if engine is not None else create_engine(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"Store({display_url(self.url)!r})"

    def check(self) -> None:
        """Connect once; raise :class:`StoreError` with the cause if that fails."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa_exc.SQLAlchemyError as exc:
            raise describe(exc, self.url) from None

    def migrate(self) -> str | None:
        """Bring the schema to the newest revision (``alembic upgrade head``).

        Safe to run again and from several processes at once. Returns the
        revision now current; raises :class:`StoreError` on failure.
        """
        try:
            upgrade(self.engine)
        except sa_exc.SQLAlchemyError as exc:
            raise describe(exc, self.url) from None
        return self.current_revision()

    def require_current(self) -> None:
        """Raise :class:`StoreError` unless the schema is at the newest revision."""
        current = self.current_revision()
        if current != head_revision():
            state = "has no guardstack schema" if current is None else f"is at revision {current}"
            raise StoreError(
                f"database {display_url(self.url)} {state}; "
                f"run `guardstack db upgrade --db {display_url(self.url)}`"
            )

    def current_revision(self) -> str | None:
        """The schema revision in the database (None for an empty database)."""
        try:
            with self.engine.connect() as conn:
                ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
                return ctx.get_current_revision()
        except sa_exc.SQLAlchemyError as exc:
            raise describe(exc, self.url) from None

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()


def fast_commit_engine(store: Store) -> tuple[sa.Engine, bool]:
    """An autocommitting engine on ``store``'s database whose commits do not
    wait for the disk (PostgreSQL's ``synchronous_commit = off``, SQLite's
    ``synchronous = NORMAL`` in WAL mode), and whether it is a new engine of
    its own (to be disposed by its user) rather than the store's. For state a
    crash may lose the last milliseconds of (rate-limit buckets, stored
    Responses API answers); the event writer keeps its durable commits."""
    if store.dialect == "postgresql":
        # No pre-ping: it would double the round trips of every call. A
        # connection the server dropped fails one call, which the gateway
        # answers from its own memory; the pool then replaces it.
        engine = create_engine(store.url, pool_size=4, max_overflow=4, pool_pre_ping=False,
                               isolation_level="AUTOCOMMIT")
        event.listen(engine, "connect", _no_disk_wait("SET synchronous_commit TO OFF"))
        return engine, True
    if isinstance(store.engine.pool, StaticPool):  # in-memory: its one connection
        return store.engine.execution_options(isolation_level="AUTOCOMMIT"), False
    # its own connect hook sets WAL mode first
    engine = create_engine(store.url, isolation_level="AUTOCOMMIT")
    event.listen(engine, "connect", _no_disk_wait("PRAGMA synchronous=NORMAL"))
    return engine, True


def _no_disk_wait(statement: str) -> Any:
    def hook(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(statement)
        cur.close()
        if hasattr(dbapi_conn, "commit"):
            dbapi_conn.commit()

    return hook
