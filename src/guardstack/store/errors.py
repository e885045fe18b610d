"""Errors the store raises, with messages fit to print to a user as they are."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url


class StoreError(Exception):
    """A store problem the caller can act on (bad URL, unreachable database,
    unknown key id, ...). ``str(err)`` is a complete sentence without a traceback."""


def display_url(url: str) -> str:
    """The URL with any password masked, safe for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` means the database is unreachable or went away (so
    the same write may succeed later), not that the data or SQL is wrong."""
    if isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError,
    ):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def describe(exc: BaseException, url: str) -> StoreError:
    """Turn a driver/SQLAlchemy error into a one-line :class:`StoreError`."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        # The driver's own message, first line only: it names the cause
        # ("connection refused", "unable to open database file") without SQL.
        detail = str(exc.orig).strip().splitlines()
        reason = detail[0] if detail else type(exc.orig).__name__
    else:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if is_transient(exc):
        return StoreError(f"cannot use database {display_url(url)}: {reason}")
    return StoreError(f"database error on {display_url(url)}: {reason}")
