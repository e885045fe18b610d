"""CLI commands of layer 3: ``ingest`` and ``analyze``.

Wired into ``guardstack`` by :func:`add_commands`. Both take ``--db URL``
(default ``$GUARDSTACK_DB`` or ``sqlite:///guardstack.db``), return an exit
code, and report problems as one ``guardstack: error:`` line (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guardstack import argtypes
from guardstack.cli import CommandError, report_error
from guardstack.offline.settings import SEVERITIES
from guardstack.store.engine import ENV_URL, Store, require_existing
from guardstack.store.errors import StoreError, display_url

Handler = Callable[[argparse.Namespace], int]


def _guarded(fn: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        from guardstack.offline.ingest import IngestError

        try:
            return fn(args)
        except (StoreError, IngestError, ValueError, RuntimeError) as exc:
            return report_error(str(exc))

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


def parse_when(text: str) -> datetime:
    """ISO-8601 with a zone, or an age back from now (``7d``, ``12h``, ``2w``)."""
    from guardstack.store.retention import parse_age

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            return argtypes.in_years(datetime.now(UTC) - parse_age(text), text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(
                f"expected ISO-8601 with a zone (2026-03-02T00:00:00+00:00) or an age "
                f"such as 7d or 12h, got {text!r}"
            ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone; add one, e.g. {value.replace(tzinfo=UTC).isoformat()}")
    try:
        return argtypes.in_years(value, text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", default=None,
                   help=f"database URL (default ${ENV_URL} or sqlite:///guardstack.db)")


def open_store(url: str | None, *, create: bool = True) -> Store:
    """The store at ``url``, its schema created when the database is empty;
    or (``create`` False: commands that only read what is stored) a clear
    error for a database nothing was ever stored in, a mistyped ``--db``
    most often, rather than an empty one made on the spot."""
    if not create:
        require_existing(url)
    store = Store(url)
    current = store.current_revision()
    if current is None:
        if not create:
            store.dispose()
            raise StoreError(f"database {display_url(store.url)} "
                             "has no guardstack schema: nothing was stored there (is --db "
                             "right? the gateway, ingest and simulate create it)")
        store.migrate()  # an empty database: create the schema, as the gateway would
    else:
        store.require_current()
    return store


def _bar(enabled: bool) -> Callable[[str, int], Callable[[int | None], None]] | None:
    if not enabled:
        return None

    def make(desc: str, total: int) -> Callable[[int | None], None]:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False)

        def step(n: int | None) -> None:
            if n is None:
                bar.close()
            else:
                bar.update(n)

        return step

    return make


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "ingest",
        help="Load conversation logs (JSONL) into the event store, scored and embedded.",
        description="Load JSONL conversation logs into the event store. One object per "
        'line: {"user", "session", "ts" (ISO-8601 with zone), "role" '
        '(user|assistant|system|tool), "content"} plus optional "tenant", "model", "id"; a '
        "tool line is what an agent read, checked for planted instructions and not stored. "
        "Re-running the same file resumes an interrupted load and never duplicates. See "
        "docs/offline.md.",
    )
    p.add_argument("file", type=Path, metavar="FILE.jsonl")
    _add_db(p)
    p.add_argument("--on-error", choices=("reject", "skip"), default="reject",
                   help="reject (default): load nothing if any line is bad; "
                   "skip: load the good lines and report the bad ones")
    p.add_argument("--batch-size", type=argtypes.positive_int, default=256,
                   help="messages scored and committed together (default 256)")
    p.add_argument("--assume-utc", action="store_true",
                   help="read timestamps without a zone as UTC instead of rejecting them")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_ingest)

    a = sub.add_parser(
        "analyze",
        help="Offline analysis: risk, decomposition, trajectories, coordination, topics.",
        description="Analyse stored traffic across users and sessions and write findings "
        "and review cases back to the store (idempotent per window). See docs/offline.md.",
    )
    _add_db(a)
    a.add_argument("--since", type=parse_when, metavar="T",
                   help="start of the window: ISO-8601 with zone, or an age like 7d")
    a.add_argument("--until", type=parse_when, metavar="T", help="end of the window (exclusive)")
    a.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default) or ray (Ray Data; RAY_ADDRESS selects a cluster)")
    a.add_argument("--json", action="store_true",
                   help='print {"flagged_users", "cases", "clusters"} as JSON')
    a.add_argument("--enforce", action="store_true",
                   help="set account states for cases at or above enforce_severity "
                   "(off by default; reversible with `guardstack accounts reverse`)")
    a.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override an analysis setting (see docs/offline.md)")
    a.add_argument("--quiet", action="store_true", help="no progress bars")
    a.add_argument("--notify", metavar="URL",
                   help="POST each open case at or above --notify-severity, once, to this "
                   "webhook (Slack, Teams or any JSON receiver; a secret reference such as "
                   "os.environ/SLACK_WEBHOOK_URL is read from the environment); a failed "
                   "delivery is retried by the next run")
    a.add_argument("--notify-severity", choices=SEVERITIES, default="high",
                   help="lowest severity to notify (default: high)")
    a.add_argument("--dashboard-url", metavar="URL",
                   help="the review dashboard's address (e.g. https://llm.example.org/ui), "
                   "for links to each case in notifications")
    a.set_defaults(func=cmd_analyze)


@_guarded
def cmd_ingest(args: argparse.Namespace) -> int:
    """Load a JSONL file into the store."""
    from guardstack.offline.ingest import SHOW_ERRORS, ingest

    if args.file.is_dir():
        return report_error(f"{args.file} is a folder; give a JSONL file")
    if not args.file.is_file():
        return report_error(f"no such file: {args.file}")
    if args.file.stat().st_size == 0:
        return report_error(f"{args.file} is empty: nothing to load")
    with open_store(args.db) as store:
        report = ingest(store, args.file, on_error=args.on_error, batch_size=args.batch_size,
                        assume_utc=args.assume_utc, progress=not args.quiet)
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0
    for number, error in report.errors[:SHOW_ERRORS]:
        print(f"{args.file}:{number}: skipped: {error}", file=sys.stderr)
    if len(report.errors) > SHOW_ERRORS:
        print(f"... and {len(report.errors) - SHOW_ERRORS} more bad lines", file=sys.stderr)
    parts = [f"loaded {report.loaded} of {report.lines} lines from {args.file}"]
    if report.already_present:
        parts.append(f"{report.already_present} already in the store")
    if report.duplicates:
        parts.append(f"{report.duplicates} duplicate lines")
    if report.bad_lines:
        parts.append(f"{report.bad_lines} bad lines skipped")
    if report.unscored:
        parts.append(f"{report.unscored} could not be scored (analyze retries them)")
    print("; ".join(parts))
    if report.out_of_order:
        print(f"note: {report.out_of_order} line(s) are earlier than the line before them in "
              "the same session; kept (analysis orders by time)", file=sys.stderr)
    return 0


@_guarded
def cmd_analyze(args: argparse.Namespace) -> int:
    """Run offline analysis over a window."""
    from guardstack.offline.analysis import analyze
    from guardstack.offline.ingest import unfinished_runs
    from guardstack.offline.settings import AnalysisSettings

    settings = AnalysisSettings().with_overrides(args.set)
    webhook = _webhook(args.notify)
    with open_store(args.db, create=False) as store:
        partial = unfinished_runs(store)
        for run in partial:
            # analysis still runs: the stored part is worth reading, but not as the whole
            print(f"note: the load of {run['source']} did not finish ({run['status']}, "
                  f"{run['stored']} of {run['lines']} lines stored): this analysis sees part "
                  f"of it; run `guardstack ingest` on that file again to finish it",
                  file=sys.stderr)
        result = analyze(store, args.since, args.until, engine=args.engine, settings=settings,
                         do_enforce=args.enforce, progress=_bar(not args.quiet))
        # Even with nothing new to analyse: deliveries a failed run left are due.
        sent = _notify(store, webhook, args) if webhook else None
    status = 1 if sent is not None and sent.error else 0
    extra = {**_notified_json(sent), **({"unfinished_loads": partial} if partial else {})}
    if result.empty:
        if args.json:
            print(json.dumps({"flagged_users": [], "cases": [], "clusters": [],
                              "run": {"messages": 0}, **extra}))
        print("nothing to analyze: no user messages in the store for this window",
              file=sys.stderr)
        return status
    if args.json:
        print(json.dumps({**result.to_json(), **extra}, ensure_ascii=False))
        return status
    labels: dict[str, int] = {}
    for f in result.findings:
        labels[f.label] = labels.get(f.label, 0) + 1
    print(f"analysed {result.messages} requests from {result.users} users ({result.engine} "
          f"engine, run {result.run_id})")
    print("flagged: " + (", ".join(f"{n} {k}" for k, n in sorted(labels.items())) or "none"))
    for c in result.cases[:20]:
        print(f"  {c.id}  {c.kind:12s} {c.severity:8s} {c.category:18s} {c.score:.2f}  "
              f"{c.subject}  [{c.status}]")
    if len(result.cases) > 20:
        print(f"  ... and {len(result.cases) - 20} more cases")
    rising = [c for c in result.clusters if c.rising]
    print(f"topic map: {len(result.clusters)} clusters shown"
          + (f", rising: {', '.join(c.label for c in rising)}" if rising else ""))
    for e in result.enforced:
        print(f"enforced: {e.user} -> {e.state} (action {e.action_id}, case {e.case_id})")
    if sent is not None and sent.sent:
        print(f"notified: {len(sent.sent)} case(s)")
    return status


def _webhook(ref: str | None) -> str | None:
    """The --notify URL, read from the environment when it is a reference
    (a Slack webhook's URL is its secret)."""
    if ref is None:
        return None
    from guardstack.secrets import SecretError, resolve_secret

    try:
        url = resolve_secret(ref, "--notify")
    except SecretError as exc:
        raise CommandError(str(exc)) from None
    if not url or not url.startswith(("http://", "https://")):
        raise CommandError("--notify must be an http(s) URL or a reference to one")
    return url


def _notify(store: Any, webhook: str, args: argparse.Namespace) -> Any:
    from guardstack.offline.notify import notify

    sent = notify(store, webhook, min_severity=args.notify_severity,
                  dashboard_url=args.dashboard_url)
    if sent.error:
        print(f"guardstack: notify: {sent.error}; {sent.pending} case(s) left for the next run",
              file=sys.stderr)
    return sent


def _notified_json(sent: Any) -> dict[str, Any]:
    if sent is None:
        return {}
    return {"notified": {"sent": sent.sent, "pending": sent.pending, "error": sent.error}}
