"""``guardstack eval``: measure the guard on labelled JSONL files."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from guardstack import argtypes
from guardstack.classifiers.backend_options import add_backend_arguments
from guardstack.evaluation.runner import DEFAULT_BATCH_SIZE, DEFAULT_LATENCY_SAMPLE

DESCRIPTION = """\
Score labelled JSONL files (the normalized schema of ../shared/data: 'text',
or 'response' with its prompt, or 'turns'; 'label' safe/unsafe) and report per
file: n, precision, recall, F1, false-positive rate, AUPRC of the harm score,
recall per taxonomy category, single-item latency p50/p95 and batched
throughput. Unsafe is the positive class; an item is predicted unsafe when the
policy's decision is flag or block (--positive block: block only). Exit 0 on
success, 2 on bad input (the message names the file and line).
See docs/evaluation.md."""




def examples_path() -> str:
    """The shipped example set: benign, sensitive-but-benign and harmful requests
    (named at benchmark level, no harmful content), a few with responses."""
    return str(resources.files("guardstack.evaluation").joinpath("examples.jsonl"))


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="Measure the guard on labelled JSONL files.",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="*", metavar="FILE.jsonl", help="files in the normalized schema")
    p.add_argument("--examples", action="store_true",
                   help="also score the small labelled example set shipped with guardstack")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object {"results": [...]} instead of the table')
    p.add_argument("--policy", default=None, metavar="P",
                   help="policy YAML file (default: the shipped one)")
    p.add_argument("--role", choices=("prompt", "response"), default=None,
                   help="judge every record as this role (default: records with a 'response' "
                   "field as responses, the others as prompts)")
    p.add_argument("--batch-size", type=argtypes.positive_int,
                   default=DEFAULT_BATCH_SIZE, metavar="N",
                   help=f"items per detector call (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--limit", type=argtypes.positive_int, default=None, metavar="N",
                   help="score at most N records of each file")
    p.add_argument("--positive", choices=("flag", "block"), default="flag",
                   help="decision that counts as predicted unsafe: flag (flag or block, "
                   "the default) or block (block only)")
    p.add_argument("--latency-sample", type=argtypes.count,
                   default=DEFAULT_LATENCY_SAMPLE, metavar="N",
                   help="items per file scored one at a time for latency p50/p95 "
                   f"(default {DEFAULT_LATENCY_SAMPLE}; 0 skips the pass)")
    add_backend_arguments(p)
    p.set_defaults(func=cmd_eval)


def _progress(path: str) -> Callable[[int], None] | None:
    """A running count on an interactive terminal, at most a few updates a second;
    nothing when stderr is a file or pipe, so logs and --json stay clean."""
    if not sys.stderr.isatty():
        return None
    last = 0.0

    def show(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= 0.25:
            last = now
            sys.stderr.write(f"\r\033[K{path}: {done} scored")
            sys.stderr.flush()

    return show


def cmd_eval(args: argparse.Namespace) -> int:
    from guardstack.cli import CommandError
    from guardstack.commands import load_policy
    from guardstack.evaluation import report, runner
    from guardstack.evaluation.reader import InputError
    from guardstack.guard import Guard

    files = list(args.files)
    if args.examples:
        files.append(examples_path())
    if not files:
        raise CommandError("eval: give at least one FILE.jsonl (or --examples)")
    policy = load_policy(args.policy)
    try:
        runner.validate(files, role=args.role, limit=args.limit)
    except InputError as exc:
        raise CommandError(str(exc)) from None

    from guardstack.classifiers.backend_options import detector_from_args

    guard = Guard(policy=policy, detector=detector_from_args(args))
    try:
        guard.detector  # noqa: B018 - load the model now, so a broken install is one clear error
    except Exception as exc:
        raise CommandError(f"cannot load detector {policy.detector!r}: {exc}") from None

    results = []
    for path in files:
        stats = getattr(guard.detector, "reset_stats", None)
        if stats:  # a cascade counts escalations per file
            stats()
        try:
            results.append(runner.evaluate_file(
                path, guard, role=args.role, batch_size=args.batch_size, limit=args.limit,
                positive=args.positive, latency_sample=args.latency_sample,
                progress=_progress(path),
            ))
        except InputError as exc:  # the file changed after validation
            raise CommandError(str(exc)) from None
        finally:
            if sys.stderr.isatty():
                sys.stderr.write("\r\033[K")
        if stats:
            results[-1].extra["cascade"] = guard.detector.stats.as_dict()  # type: ignore[attr-defined]
    if args.json:
        print(json.dumps({"results": [r.to_dict() for r in results]}, ensure_ascii=False))
    else:
        print(report.render(results))
    failed = [r.file for r in results if r.confusion.n and r.errors >= r.confusion.n]
    if failed:  # the figures above measure the fail mode, not the detector
        print(f"guardstack: error: the detector failed on every item of {', '.join(failed)}; "
              "its figures are the policy's fail mode, not a measurement", file=sys.stderr)
        return 1
    return 0
