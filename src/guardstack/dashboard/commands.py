"""``guardstack users`` (dashboard accounts) and ``guardstack dashboard``;
``guardstack cases`` and ``guardstack audit``, the review queue and the audit
log for teams that review from a terminal.

``users add NAME --role ROLE`` reads the password from standard input (the
first line), never from the command line where ``ps`` and shell history
would keep it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from guardstack import argtypes
from guardstack.dashboard.decisions import CASE_ACTIONS
from guardstack.store.engine import ENV_URL, Store
from guardstack.store.errors import StoreError
from guardstack.store.schema import CASE_KINDS, CASE_STATUSES, DASHBOARD_ROLES


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", default=None,
                   help=f"database URL (default ${ENV_URL} or sqlite:///guardstack.db)")


def _open(url: str | None, *, create: bool = True) -> Store:
    """The store at ``url``; ``create`` False (commands that only read) refuses
    a SQLite file that does not exist instead of leaving an empty one behind."""
    from guardstack.cli import CommandError
    from guardstack.store.engine import require_existing

    try:
        if not create:
            require_existing(url)
        store = Store(url)
    except StoreError as exc:  # a URL it cannot use (a folder that does not exist)
        raise CommandError(str(exc)) from None
    try:
        if store.current_revision() is None:
            store.migrate()  # an empty database: create the schema, as the gateway would
        else:
            store.require_current()
    except StoreError as exc:
        store.dispose()
        raise CommandError(str(exc)) from None
    return store


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def add_commands(sub: Any) -> None:
    u = sub.add_parser("users", help="Manage review dashboard accounts (admin, reviewer, "
                                     "analyst).",
                       description="Manage the accounts that log in to the review dashboard. "
                       "Passwords are stored as scrypt hashes. See docs/dashboard.md.")
    usub = u.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    a = usub.add_parser("add", help="Add an account; the password is read from standard input.",
                        description="Add a dashboard account. The password is the first line "
                        "of standard input (at least 8 characters), e.g. "
                        "`printf '%%s\\n' \"$PW\" | guardstack users add alice --role reviewer`.")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--role", required=True, choices=DASHBOARD_ROLES,
                   help="admin: everything incl. the audit log; reviewer: cases, histories, "
                   "search, account actions; analyst: aggregates only")
    _add_db(a)
    a.set_defaults(func=cmd_users_add)
    ls = usub.add_parser("list", help="List accounts (never their passwords).")
    _add_db(ls)
    ls.set_defaults(func=cmd_users_list)
    rm = usub.add_parser("remove", help="Remove an account and end its sessions.")
    rm.add_argument("name", metavar="NAME")
    _add_db(rm)
    rm.set_defaults(func=cmd_users_remove)

    d = sub.add_parser("dashboard", help="Serve the review dashboard on its own (at /ui).",
                       description="Serve the review dashboard for trust and safety reviewers "
                       "at http://HOST:PORT/ui without the gateway (`guardstack serve` also "
                       "mounts it at /ui). See docs/dashboard.md.")
    _add_db(d)
    d.add_argument("--host", default="127.0.0.1", help="address to listen on "
                                                       "(default 127.0.0.1)")
    d.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    d.add_argument("--secure-cookies", action="store_true",
                   help="mark session cookies Secure (set this behind HTTPS)")
    d.add_argument("--k-anonymity", type=int, default=5, metavar="K",
                   help="topic clusters with fewer distinct users are never shown (default 5)")
    d.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn log level (default: info)")
    d.set_defaults(func=cmd_dashboard)

    c = sub.add_parser("cases", help="The review queue from the command line: list cases, "
                                     "decide one.",
                       description="What the dashboard's queue shows and decides, for teams "
                       "without a browser in the loop. Decisions are recorded as the "
                       "dashboard's are (status, reviewer, note, audit log). See "
                       "docs/dashboard.md.")
    csub = c.add_subparsers(dest="cases_command", metavar="ACTION", required=True)
    cl = csub.add_parser("list", help="Cases, most severe first (pseudonymous subjects).")
    cl.add_argument("--status", default="open", choices=CASE_STATUSES)
    cl.add_argument("--kind", default=None, choices=CASE_KINDS)
    cl.add_argument("--page", type=argtypes.positive_int, default=1)
    cl.add_argument("--json", action="store_true", help="one JSON object")
    _add_db(cl)
    cl.set_defaults(func=cmd_cases_list)
    cd = csub.add_parser("decide", help="Confirm, dismiss, escalate or reopen a case.")
    cd.add_argument("case_id", metavar="CASE_ID")
    cd.add_argument("action", choices=sorted(CASE_ACTIONS))
    cd.add_argument("--note", required=True, help="why (recorded with the decision)")
    cd.add_argument("--reviewer", default=None, help="who decides (default cli:$USER)")
    _add_db(cd)
    cd.set_defaults(func=cmd_cases_decide)

    au = sub.add_parser("audit", help="Read the audit log: who looked at whom, who decided "
                                      "what.",
                        description="The audit log, newest first: reads of users' histories, "
                        "pseudonyms resolved, decisions, account actions, keys, purges.")
    au.add_argument("--actor", default="", help="only this actor's entries")
    au.add_argument("--action", default="", help="only this action (e.g. user.history)")
    au.add_argument("--page", type=argtypes.positive_int, default=1)
    au.add_argument("--json", action="store_true", help="one JSON object per line")
    _add_db(au)
    au.set_defaults(func=cmd_audit)


def _read_password() -> str:
    from guardstack.cli import CommandError

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CommandError("the passwords differ")
        return password
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise CommandError("no password on standard input: pipe it in, e.g. "
                           "printf '%s\\n' \"$PW\" | guardstack users add NAME --role ROLE")
    return password


def cmd_users_add(args: argparse.Namespace) -> int:
    from guardstack.cli import CommandError
    from guardstack.dashboard.staff import Staff, check_name

    try:
        check_name(args.name)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    password = _read_password()
    with _open(args.db) as store:
        try:
            member = Staff(store).add(args.name, args.role, password, actor=_actor())
        except (ValueError, StoreError) as exc:
            raise CommandError(str(exc)) from None
    print(f"added {member.role} {member.name}")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from guardstack.dashboard.staff import Staff

    with _open(args.db, create=False) as store:
        members = Staff(store).list()
    rows = [("NAME", "ROLE", "CREATED", "LAST LOGIN", "LOCKED UNTIL")]
    for m in members:
        rows.append((m.name, m.role, m.created_at.strftime("%Y-%m-%d %H:%M"),
                     m.last_login.strftime("%Y-%m-%d %H:%M") if m.last_login else "-",
                     m.locked_until.strftime("%Y-%m-%d %H:%M") if m.locked_until else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_users_remove(args: argparse.Namespace) -> int:
    from guardstack.cli import CommandError
    from guardstack.dashboard.staff import Staff

    with _open(args.db) as store:
        try:
            Staff(store).remove(args.name, actor=_actor())
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    print(f"removed {args.name}")
    return 0


def _can_listen(host: str, port: int) -> None:
    """A clear error, before announcing an address, when the port is taken."""
    import socket

    from guardstack.cli import CommandError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def cmd_dashboard(args: argparse.Namespace) -> int:
    import uvicorn

    from guardstack.cli import CommandError
    from guardstack.dashboard.app import standalone_app

    if not 0 < args.port < 65536:
        raise CommandError(f"--port must be 1-65535, not {args.port}")
    if args.k_anonymity < 2:
        raise CommandError("--k-anonymity must be at least 2")
    _can_listen(args.host, args.port)
    store = _open(args.db)
    app = standalone_app(store, secure_cookies=args.secure_cookies,
                         k_anonymity=args.k_anonymity)
    print(f"review dashboard on http://{args.host}:{args.port}/ui", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    store.dispose()
    return 0


def cmd_cases_list(args: argparse.Namespace) -> int:
    from guardstack.dashboard.queries import queue

    with _open(args.db, create=False) as store:
        page = queue(store, status=args.status, kind=args.kind, page=args.page)
    if args.json:
        print(json.dumps({"cases": page.rows, "total": page.total, "page": page.page,
                          "pages": page.pages, "counts": page.counts}, default=str))
        return 0
    rows = [("CASE", "KIND", "SEVERITY", "SCORE", "CATEGORY", "SUBJECT", "FIRST SEEN")]
    rows += [(r["id"], r["kind"], r["severity"], f"{r['score']:.2f}", r["category"] or "-",
              r["subject"], f"{r['first_seen']:%Y-%m-%d %H:%M}") for r in page.rows]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print(f"{page.total} {args.status} case(s), page {page.page} of {page.pages}; "
          + ", ".join(f"{k} {v}" for k, v in page.counts.items()), file=sys.stderr)
    return 0


def cmd_cases_decide(args: argparse.Namespace) -> int:
    from guardstack.cli import CommandError
    from guardstack.dashboard.decisions import DecisionError, decide

    if not args.note.strip():
        raise CommandError("--note must say why")
    with _open(args.db) as store:
        try:
            done = decide(store, args.case_id, args.action, reviewer=args.reviewer or _actor(),
                          note=args.note)
        except DecisionError as exc:
            raise CommandError(str(exc)) from None
    print(f"{done.case_id}: {done.previous} -> {done.status}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from guardstack.dashboard.queries import audit_page

    with _open(args.db, create=False) as store:
        rows, more = audit_page(store, page=args.page, actor=args.actor, action=args.action)
    for r in rows:
        if args.json:
            print(json.dumps(r, default=str))
        else:
            print(f"{r['id']:>6}  {r['ts']:%Y-%m-%d %H:%M:%S}  {r['actor']}  {r['action']}"
                  f"  {r['subject_user'] or '-'}  {json.dumps(r['detail'] or {}, default=str)}")
    if more:
        print(f"more: --page {args.page + 1}", file=sys.stderr)
    return 0
