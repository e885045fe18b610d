"""CLI commands of the store: ``keys``, ``accounts``, ``db`` and ``purge``.

Wired into ``guardstack`` by :func:`add_commands`. Every command takes
``--db URL`` (default ``$GUARDSTACK_DB`` or ``sqlite:///guardstack.db``),
returns an exit code, and reports problems as one ``guardstack: error:``
line (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Callable, Sequence

from guardstack.cli import report_error
from guardstack.store.accounts import AccountAction, Accounts, AccountState
from guardstack.store.engine import ENV_URL, Store, missing_sqlite_file, require_existing
from guardstack.store.errors import StoreError, display_url
from guardstack.store.keys import KeyInfo, KeyStore
from guardstack.store.retention import parse_age, purge

Handler = Callable[[argparse.Namespace], int]


def _guarded(fn: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (StoreError, ValueError) as exc:
            return report_error(str(exc))

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


def _store(args: argparse.Namespace, *, current: bool = True, create: bool = False) -> Store:
    """``create``: a database with no guardstack schema at all gets one (the
    first `keys add` on a new machine just works); a database at an older
    revision still needs an explicit `guardstack db upgrade`. Without
    ``create``, a SQLite file that does not exist is refused before
    connecting, which would leave an empty one behind (a mistyped --db)."""
    if not create and current:
        require_existing(args.db)
    store = Store(args.db)
    if create and store.current_revision() is None:
        store.migrate()
    if current:
        store.require_current()
    return store


def _actor(args: argparse.Namespace) -> str:
    if getattr(args, "actor", None):
        return str(args.actor)
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help=f"database URL (default ${ENV_URL} or sqlite:///guardstack.db); "
        "postgresql://USER@HOST/DB for PostgreSQL",
    )


# -- db ----------------------------------------------------------------------
@_guarded
def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Create or upgrade the schema to the newest revision."""
    with _store(args, current=False) as store:
        before = store.current_revision()
        after = store.migrate()
    if before == after:
        print(f"{display_url(store.url)}: already at revision {after}")
    else:
        print(f"{display_url(store.url)}: upgraded {before or 'empty'} -> {after}")
    return 0


@_guarded
def cmd_db_status(args: argparse.Namespace) -> int:
    """Show the schema revision of the database."""
    missing = missing_sqlite_file(args.db)
    if missing is not None:  # a status check creates nothing
        print(f"{missing}: no such database file (none created)")
        return 0
    with _store(args, current=False) as store:
        print(f"{display_url(store.url)}: revision {store.current_revision() or 'none (empty)'}")
    return 0


# -- keys --------------------------------------------------------------------
@_guarded
def cmd_keys_add(args: argparse.Namespace) -> int:
    """Issue an API key; the plaintext key is printed once, on stdout."""
    with _store(args, create=True) as store:
        plaintext, info = KeyStore(store).create(
            args.user, tenant=args.tenant, name=args.name, end_users=args.end_users,
            actor=_actor(args), rate_limit=args.rate_limit, rate_burst=args.rate_burst
        )
    print(
        f"created key {info.id} ({info.prefix}...) for user {info.user}"
        + (f", tenant {info.tenant}" if info.tenant else "")
        + (" (its requests name their end users)" if info.end_users else "")
        + (f", {limits}" if (limits := _limits(info)) else "")
        + ". It is shown only now: store it.",
        file=sys.stderr,
    )
    print(plaintext)
    return 0


@_guarded
def cmd_keys_list(args: argparse.Namespace) -> int:
    """List API keys (never their plaintext)."""
    with _store(args) as store:
        keys = KeyStore(store).list_keys(user=args.user, include_revoked=not args.active)
    rows = [("ID", "PREFIX", "USER", "TENANT", "NAME", "END USERS", "RATE LIMIT", "CREATED",
             "REVOKED")]
    for k in keys:
        rows.append(
            (
                k.id,
                k.prefix,
                k.user,
                k.tenant or "-",
                k.name or "-",
                "yes" if k.end_users else "-",
                _limits(k) or "-",
                k.created_at.strftime("%Y-%m-%d %H:%M"),
                k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "-",
            )
        )
    _table(rows)
    return 0


def _limits(k: KeyInfo) -> str | None:
    """A key's own rate limit in words; None when it has none."""
    if k.rate_limit is None and not k.rate_burst:
        return None
    rate = "gateway's rate" if k.rate_limit is None else \
        "no limit" if k.rate_limit == 0 else f"{k.rate_limit:g}/s"
    return rate + (f", burst {k.rate_burst}" if k.rate_burst else "")


@_guarded
def cmd_keys_limit(args: argparse.Namespace) -> int:
    """Give a key its own rate limit, or (--clear) the gateway's again."""
    if args.clear and (args.rate_limit is not None or args.rate_burst is not None):
        raise ValueError("--clear takes no --rate-limit or --rate-burst")
    if not args.clear and args.rate_limit is None and args.rate_burst is None:
        raise ValueError("give --rate-limit and/or --rate-burst, or --clear")
    with _store(args) as store:
        keys = KeyStore(store)
        rate, burst = args.rate_limit, args.rate_burst
        if not args.clear:  # what is not given stays as it is (--clear resets both)
            current = keys.get(args.id)
            rate = current.rate_limit if rate is None else rate
            burst = current.rate_burst if burst is None else burst
        info = keys.set_limits(args.id, rate_limit=rate, rate_burst=burst, actor=_actor(args))
    print(f"key {info.id} ({info.prefix}...) of user {info.user}: "
          f"{_limits(info) or 'the gateway rate limit'}")
    return 0


@_guarded
def cmd_keys_revoke(args: argparse.Namespace) -> int:
    """Revoke an API key by id."""
    with _store(args) as store:
        keys = KeyStore(store)
        before = keys.get(args.id)
        info = keys.revoke(args.id, actor=_actor(args))
    if before.revoked_at is not None:
        print(f"key {info.id} ({info.prefix}...) of user {info.user} was already revoked "
              f"({before.revoked_at.strftime('%Y-%m-%d %H:%M')} UTC)")
    else:
        print(f"revoked key {info.id} ({info.prefix}...) of user {info.user}")
    return 0


# -- accounts ----------------------------------------------------------------
def _print_action(a: AccountAction) -> None:
    note = f" (reverses {a.reverses})" if a.reverses else ""
    note += f" [reversed by {a.reversed_by}]" if a.reversed_by else ""
    print(
        f"{a.id:>6}  {a.ts:%Y-%m-%d %H:%M:%S}  {a.previous_state} -> {a.state}  "
        f"by {a.actor}: {a.reason}{note}"
    )


_PSEUDONYM = re.compile(r"p-[0-9a-f]{16}")
_USER_HELP = ("a user id as the gateway records it, or a pseudonym from analyze's output "
              "(p-...; resolved through the findings, and the audit log records it)")


def _user(store: Store, given: str, args: argparse.Namespace, why: str) -> str:
    """The user ``given`` names: a pseudonym from analysis output (``p-...``)
    is resolved through the findings, which the audit log records (who, why);
    anything else is a user id as the gateway records it."""
    if not _PSEUDONYM.fullmatch(given):
        return given
    from guardstack.offline.pseudonym import resolve

    user = resolve(store, given, actor=_actor(args), reason=why)
    if user is None:
        return given  # no finding names it: read it as a user id
    print(f"{given} is user {user} (resolved; recorded in the audit log)", file=sys.stderr)
    return user


@_guarded
def cmd_accounts_show(args: argparse.Namespace) -> int:
    """Show a user's account state and its history."""
    with _store(args) as store:
        user = _user(store, args.user, args, "guardstack accounts show")
        accounts = Accounts(store, cache_ttl=0)
        state = accounts.get_state(user)
        history = accounts.history(user)
    print(f"{user}: {state}")
    for action in history:
        _print_action(action)
    return 0


@_guarded
def cmd_accounts_set(args: argparse.Namespace) -> int:
    """Set a user's account state (who and why are recorded)."""
    with _store(args) as store:
        user = _user(store, args.user, args, f"guardstack accounts set: {args.reason}")
        action = Accounts(store).set_state(user, args.state, _actor(args), args.reason)
    _print_action(action)
    return 0


@_guarded
def cmd_accounts_reverse(args: argparse.Namespace) -> int:
    """Reverse an account action, restoring the state before it."""
    with _store(args) as store:
        action = Accounts(store).reverse(args.action_id, _actor(args), args.reason)
    _print_action(action)
    return 0


# -- purge -------------------------------------------------------------------
@_guarded
def cmd_purge(args: argparse.Namespace) -> int:
    """Delete recorded traffic older than the given age."""
    age = parse_age(args.older_than)
    with _store(args) as store:
        gone = purge(store, age, actor=_actor(args), dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {gone.exchanges} exchanges, {gone.messages} messages and "
          f"{gone.stored_responses} stored responses older than {args.older_than}")
    return 0


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


def _add_limits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate-limit", type=float, metavar="PER_SECOND",
                   help="requests per second for this key's user (each end user, for an "
                        "--end-users key) instead of the gateway's --rate-limit; 0: no limit")
    p.add_argument("--rate-burst", type=int, metavar="N",
                   help="bucket size for this key instead of the gateway's --rate-burst")


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``keys``, ``accounts``, ``db`` and ``purge``. Each leaf parser
    sets ``func`` (``args.func(args) -> int``)."""
    keys = subparsers.add_parser("keys", help="manage gateway API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    p = keys_sub.add_parser("add", help="issue a key for a user (printed once)")
    p.add_argument("user", help="user id the key authenticates as")
    p.add_argument("--tenant", help="tenant id")
    p.add_argument("--name", help="a label for the key")
    p.add_argument("--end-users", action="store_true",
                   help="a platform's key (Open WebUI, a chatbot): its requests name their end "
                        "user (OpenAI 'user' or 'safety_identifier', or the gateway's "
                        "--end-user-header), and each end user is then a user of its own, "
                        "USER:END-USER, for rate limits, account states and layer 3")
    _add_limits(p)
    p.add_argument("--actor", help="who issues it (default cli:$USER)")
    _add_db(p)
    p.set_defaults(func=cmd_keys_add)
    p = keys_sub.add_parser("limit", help="give a key its own rate limit (seen by the gateway "
                                          "within --state-ttl)")
    p.add_argument("id", help="key id (from `keys list`)")
    _add_limits(p)
    p.add_argument("--clear", action="store_true", help="back to the gateway's --rate-limit")
    p.add_argument("--actor", help="who changes it (default cli:$USER)")
    _add_db(p)
    p.set_defaults(func=cmd_keys_limit)
    p = keys_sub.add_parser("list", help="list keys")
    p.add_argument("--user", help="only this user's keys")
    p.add_argument("--active", action="store_true", help="hide revoked keys")
    _add_db(p)
    p.set_defaults(func=cmd_keys_list)
    p = keys_sub.add_parser("revoke", help="revoke a key by id")
    p.add_argument("id", help="key id (from `keys list`)")
    p.add_argument("--actor", help="who revokes it (default cli:$USER)")
    _add_db(p)
    p.set_defaults(func=cmd_keys_revoke)

    accounts = subparsers.add_parser("accounts", help="account states and enforcement actions")
    acc_sub = accounts.add_subparsers(dest="accounts_command", metavar="COMMAND", required=True)
    p = acc_sub.add_parser("show", help="a user's state and action history")
    p.add_argument("user", help=_USER_HELP)
    p.add_argument("--actor", help="who looks (recorded when USER is a pseudonym; "
                                   "default cli:$USER)")
    _add_db(p)
    p.set_defaults(func=cmd_accounts_show)
    p = acc_sub.add_parser("set", help="set a user's state")
    p.add_argument("user", help=_USER_HELP)
    p.add_argument("state", choices=[s.value for s in AccountState])
    p.add_argument("--reason", required=True, help="why (recorded)")
    p.add_argument("--actor", help="who (default cli:$USER)")
    _add_db(p)
    p.set_defaults(func=cmd_accounts_set)
    p = acc_sub.add_parser("reverse", help="undo an action, restoring the previous state")
    p.add_argument("action_id", type=int)
    p.add_argument("--reason", required=True, help="why (recorded)")
    p.add_argument("--actor", help="who (default cli:$USER)")
    _add_db(p)
    p.set_defaults(func=cmd_accounts_reverse)

    db = subparsers.add_parser("db", help="event store schema")
    db_sub = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    p = db_sub.add_parser("upgrade", help="create or migrate the schema to the newest revision")
    _add_db(p)
    p.set_defaults(func=cmd_db_upgrade)
    p = db_sub.add_parser("status", help="show the schema revision")
    _add_db(p)
    p.set_defaults(func=cmd_db_status)

    p = subparsers.add_parser("purge", help="delete recorded traffic older than an age")
    p.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 30d, 2w, 12h")
    p.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    _add_db(p)
    p.set_defaults(func=cmd_purge)
