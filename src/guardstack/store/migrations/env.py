"""Alembic environment for guardstack's store.

Run through :meth:`guardstack.store.Store.migrate` (no alembic.ini needed):
it passes an open connection in ``config.attributes["connection"]``. The
``alembic`` command line also works with ``sqlalchemy.url`` set.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from guardstack.store.engine import VERSION_TABLE
from guardstack.store.schema import metadata

config = context.config


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # Our own version table, so a database shared with another
        # Alembic-managed app does not mix revision histories.
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things; batch mode rebuilds tables.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("guardstack migrations run online only (use `guardstack db upgrade`)")
run_migrations_online()
