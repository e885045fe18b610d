"""``guardstack simulate``: persona traffic for tests, benchmarks and demos."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from guardstack import argtypes
from guardstack.simulate.generator import (
    DEFAULT_MIX,
    DEFAULT_MODEL,
    DEFAULT_START,
    MIX_KEYS,
    SimulationConfig,
    SimulationError,
)
from guardstack.simulate.sinks import Api

DESCRIPTION = """\
Generate realistic, reproducible traffic from personas: ordinary users
(coding, cooking, homework, travel, writing, maths), professionals who
legitimately touch sensitive topics (the hard negatives), and adversaries
(decomposition across sessions, crescendo, jailbreak spraying, coordinated
accounts) and users at risk (crisis, delusion). The same --seed gives
byte-identical output.

--out FILE.jsonl writes user turns only (no model runs) in the ingest format
of `guardstack ingest`, and the ground truth to FILE.truth.json (or --truth).
--gateway URL replays every session as a real multi-turn chat through the
gateway with the official openai client, counting blocked prompts (400
content_filter), halted answers and 429 back-offs. --db URL loads the user
turns into an event store as `guardstack ingest` would (scored and embedded),
ready for `guardstack analyze`. See docs/simulate.md."""

DEFAULT_USERS = 100
DEFAULT_DAYS = 14
DEFAULT_CONCURRENCY = 4


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _start(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 time such as 2026-03-02T00:00:00+00:00, got {text!r}"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone; add one, e.g. {value.replace(tzinfo=UTC).isoformat()}")
    try:
        argtypes.in_years(value, text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def parse_mix(text: str) -> dict[str, float]:
    """``adversary=0.3,coordinated=0.5`` → shares overriding the default mix."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in MIX_KEYS:
            raise argparse.ArgumentTypeError(
                f"bad mix entry {part!r}: expected KEY=SHARE with KEY one of {', '.join(MIX_KEYS)}")
        try:
            share = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"mix {key}: {value!r} is not a number") from None
        if not share >= 0 or share == float("inf"):
            raise argparse.ArgumentTypeError(f"mix {key}: must be a finite number >= 0")
        mix[key] = share
    return mix


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="Generate persona traffic (JSONL with ground truth, or live through a gateway).",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--users", type=argtypes.positive_int, default=DEFAULT_USERS, metavar="N",
                   help=f"number of simulated users (default {DEFAULT_USERS})")
    p.add_argument("--days", type=argtypes.positive_int, default=DEFAULT_DAYS, metavar="D",
                   help=f"days the traffic spreads over (default {DEFAULT_DAYS})")
    p.add_argument("--seed", type=_seed, default=0, metavar="S",
                   help="random seed; the same seed gives byte-identical output (default 0)")
    p.add_argument("--start", type=_start, default=DEFAULT_START, metavar="ISO",
                   help=f"start of the simulated period, ISO-8601 with zone "
                   f"(default {DEFAULT_START.isoformat()})")
    p.add_argument("--mix", type=parse_mix, default={}, metavar="K=V,...",
                   help="override persona shares, e.g. adversary=0.3,coordinated=0.5 (keys: "
                   + ", ".join(f"{k}={v:g}" for k, v in DEFAULT_MIX.items())
                   + "; group shares and adversary-kind shares are each normalised)")
    p.add_argument("--agents", type=argtypes.share, default=SimulationConfig.agents,
                   metavar="SHARE",
                   help="share of benign users who also have their assistant read a web page "
                   "(one agent turn each: a tool call and its result); about half of those "
                   "pages carry one campaign's planted instruction, for the gateway's "
                   "tool-result check and layer 3's injection cases (default "
                   f"{SimulationConfig.agents:g}; 0: none)")
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="M",
                   help=f"model name recorded in --out and requested from --gateway "
                   f"(default {DEFAULT_MODEL})")
    dest = p.add_mutually_exclusive_group(required=True)
    dest.add_argument("--out", type=Path, metavar="FILE.jsonl",
                      help="write user turns as JSONL (ingest format)")
    dest.add_argument("--gateway", metavar="URL",
                      help="OpenAI-compatible base URL of a guardstack gateway, e.g. "
                      "http://127.0.0.1:8000/v1 (a URL without a path gets /v1)")
    dest.add_argument("--db", metavar="URL",
                      help="load the user turns into an event store, scored and embedded, as "
                      "`guardstack ingest` does (e.g. sqlite:///guardstack.db or a "
                      "postgresql:// URL); running it again adds nothing")
    p.add_argument("--truth", type=Path, metavar="FILE.json",
                   help="ground-truth file (default with --out: FILE.truth.json beside it; "
                   "with --gateway or --db: none unless given)")
    p.add_argument("--api-key", default=None, metavar="K",
                   help="API key for --gateway (default: $GUARDSTACK_API_KEY, "
                   "then $OPENAI_API_KEY, then 'simulate')")
    p.add_argument("--concurrency", type=argtypes.positive_int,
                   default=DEFAULT_CONCURRENCY, metavar="C",
                   help=f"users replayed at once with --gateway (default {DEFAULT_CONCURRENCY})")
    p.add_argument("--max-tokens", type=argtypes.positive_int, default=None, metavar="N",
                   help="with --gateway: cap each answer at N tokens (default: the server's)")
    p.add_argument("--stream", action="store_true",
                   help="with --gateway: ask for streamed answers (exercises mid-stream halts)")
    p.add_argument("--api", choices=get_args(Api), default="chat",
                   help="with --gateway: the API the simulated clients speak: chat "
                   "completions, the Responses API (each turn continues the last by "
                   "previous_response_id), Ollama's /api/chat (the ollama client, as Open "
                   "WebUI sends it), Anthropic's /v1/messages (the anthropic client), or "
                   "mixed (a quarter of the users each; default chat)")
    p.add_argument("--transcript", type=Path, metavar="FILE.jsonl",
                   help="with --gateway: write user turns and the model's real answers as JSONL")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from guardstack.cli import CommandError
    from guardstack.simulate import sinks
    from guardstack.simulate.generator import generate

    if args.transcript and not args.gateway:
        raise CommandError("--transcript goes with --gateway (with --out the file is the log)")
    if (args.max_tokens or args.stream or args.api != "chat") and not args.gateway:
        raise CommandError("--max-tokens, --stream and --api go with --gateway (no model runs "
                           "with --out)")
    try:
        config = SimulationConfig(users=args.users, days=args.days, seed=args.seed,
                                  start=args.start, model=args.model, mix=args.mix,
                                  agents=args.agents)
    except SimulationError as exc:
        raise CommandError(str(exc)) from None
    traffic = generate(config)
    summary: dict[str, Any] = {
        "users": len(traffic.truth["users"]),
        "messages": len(traffic.records),
        "labels": traffic.truth["labels"],
    }
    try:
        if args.out:
            truth_path = args.truth or sinks.default_truth_path(args.out)
            sinks.write_jsonl(traffic.records, args.out)
            sinks.write_truth(traffic.truth, truth_path)
            summary.update(out=str(args.out), truth=str(truth_path))
        elif args.db:
            summary.update(_load(args, traffic))
        else:
            summary.update(_replay(args, traffic))
    except OSError as exc:
        raise CommandError(f"cannot write {exc.filename or 'output'}: {exc.strerror}") from None
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary)
    return 0


def _replay(args: argparse.Namespace, traffic: Any) -> dict[str, Any]:
    import asyncio

    from guardstack.cli import CommandError
    from guardstack.simulate import sinks
    from guardstack.urls import normalize_base_url

    try:
        gateway = normalize_base_url(args.gateway)
    except ValueError:
        raise CommandError(f"--gateway must be an http(s) URL, got {args.gateway!r}") from None
    try:
        import openai  # noqa: F401  (the official client is what gateway mode exercises)
    except ModuleNotFoundError:
        raise CommandError("--gateway needs the openai package: pip install openai") from None
    key = (args.api_key or os.environ.get("GUARDSTACK_API_KEY")
           or os.environ.get("OPENAI_API_KEY") or "simulate")
    result = asyncio.run(sinks.replay(traffic, gateway, key, args.model,
                                      concurrency=args.concurrency,
                                      max_tokens=args.max_tokens, stream=args.stream,
                                      api=args.api))
    if result.sent and result.errors == result.sent:
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(result.error_kinds.items()))
        raise CommandError(f"no request to {gateway} succeeded ({kinds})")
    out: dict[str, Any] = {"gateway": result.as_dict()}
    if args.truth:
        truth = dict(traffic.truth)
        truth["gateway"] = {**result.as_dict(), "blocked_message_ids": result.blocked_ids,
                            "halted_message_ids": result.halted_ids}
        sinks.write_truth(truth, args.truth)
        out["truth"] = str(args.truth)
    if args.transcript:
        sinks.write_jsonl(result.transcript, args.transcript)
        out["transcript"] = str(args.transcript)
    return out


def _load(args: argparse.Namespace, traffic: Any) -> dict[str, Any]:
    """The user turns into the event store, through ingest's own loader."""
    from guardstack.cli import CommandError
    from guardstack.offline.commands import open_store
    from guardstack.offline.ingest import IngestError, ingest_lines
    from guardstack.simulate import sinks
    from guardstack.store.errors import StoreError

    source = (f"simulate seed={args.seed} users={args.users} days={args.days} "
              f"start={args.start.isoformat()}")
    lines = (sinks.record_line(line).encode() for r in traffic.records
             for line in sinks.ingest_lines(r))
    try:
        with open_store(args.db) as store:
            report = ingest_lines(store, lines, source, progress=not args.json)
    except (StoreError, IngestError, ValueError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None
    out: dict[str, Any] = {"db": {k: v for k, v in report.as_dict().items()
                                  if k in ("source", "loaded", "already_present", "unscored")}}
    if args.truth:
        sinks.write_truth(traffic.truth, args.truth)
        out["truth"] = str(args.truth)
    return out


def _print_summary(summary: dict[str, Any]) -> None:
    labels = ", ".join(f"{n} {label}" for label, n in summary["labels"].items())
    print(f"simulated {summary['users']} users ({labels}), {summary['messages']} user messages")
    if "out" in summary:
        print(f"wrote {summary['out']}; ground truth in {summary['truth']}")
    db = summary.get("db")
    if db:
        print(f"loaded {db['loaded']} lines into the event store (user turns, and the "
              "pages agents read)"
              + (f" ({db['already_present']} already there)" if db["already_present"] else "")
              + (f"; {db['unscored']} could not be scored (analyze retries them)"
                 if db["unscored"] else ""))
        if "truth" in summary:
            print(f"ground truth in {summary['truth']}")
    gateway = summary.get("gateway")
    if gateway:
        print(f"gateway: sent {gateway['sent']}, answered {gateway['answered']}, "
              f"blocked {gateway['blocked']}, halted {gateway['halted']}, "
              f"rate-limited {gateway['rate_limited']}, errors {gateway['errors']}")
        for kind, n in gateway["error_kinds"].items():
            print(f"  error {kind}: {n}", file=sys.stderr)
        for key in ("truth", "transcript"):
            if key in summary:
                print(f"{key}: {summary[key]}")
