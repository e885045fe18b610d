"""``guardstack demo``: the whole stack on one machine, with a report."""

from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import sys
from pathlib import Path
from typing import Any

from guardstack import argtypes
from guardstack.demo.upstream import MODEL_ALIAS

DESCRIPTION = """\
Run guardstack end to end on embedded defaults and print what each layer
caught: SmolLM2-135M-Instruct under llama.cpp's server as the upstream (or
--upstream URL), `guardstack serve` in front of it (shipped classifier,
default policy, a SQLite store in --workdir), persona traffic from
`guardstack simulate` streamed through the gateway, `guardstack analyze`
over the store, and a report: what was blocked and why, what was halted
mid-stream, which users layer 3 flagged and on what evidence, and the
dashboard's URL with a login when this install has a dashboard.
Ctrl-C stops it at any point; nothing it started keeps running.
See docs/demo.md."""


def add_commands(sub: Any) -> None:
    from guardstack.demo import runner

    p = sub.add_parser("demo", help="Run the whole stack on one machine and print a report.",
                       description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=Path("guardstack-demo"), metavar="DIR",
                   help="where the store, logs, ground truth and analysis go; the store is "
                   "recreated on each run (default ./guardstack-demo)")
    p.add_argument("--upstream", metavar="URL",
                   help="use this running OpenAI-compatible server (base URL with /v1) instead "
                   "of starting SmolLM2 under llama.cpp")
    p.add_argument("--model", default=MODEL_ALIAS, metavar="NAME",
                   help=f"model name requested from the upstream (default {MODEL_ALIAS})")
    p.add_argument("--port", type=argtypes.count, default=runner.DEFAULT_PORT,
                   metavar="N", help=f"gateway port (default {runner.DEFAULT_PORT}; a free port "
                   "when it is taken; 0: any free port)")
    p.add_argument("--users", type=argtypes.positive_int, default=runner.DEFAULT_USERS,
                   metavar="N", help=f"simulated users (default {runner.DEFAULT_USERS})")
    p.add_argument("--days", type=argtypes.positive_int, default=runner.DEFAULT_DAYS,
                   metavar="D", help=f"simulated days (default {runner.DEFAULT_DAYS})")
    p.add_argument("--seed", type=argtypes.count, default=runner.DEFAULT_SEED, metavar="S",
                   help=f"simulation seed (default {runner.DEFAULT_SEED})")
    p.add_argument("--mix", default=runner.DEFAULT_MIX, metavar="K=V,...",
                   help="persona shares, as for `guardstack simulate --mix` (default: a mix "
                   "with every kind of user)")
    p.add_argument("--max-tokens", type=argtypes.positive_int,
                   default=runner.DEFAULT_MAX_TOKENS, metavar="N",
                   help=f"cap on each answer (default {runner.DEFAULT_MAX_TOKENS})")
    p.add_argument("--concurrency", type=argtypes.positive_int, default=4, metavar="C",
                   help="simulated users replayed at once (default 4)")
    p.add_argument("--threads", type=argtypes.positive_int, default=None, metavar="T",
                   help="llama.cpp threads (default: 1 on two cores, else half the cores, "
                   "at most 4)")
    p.add_argument("--keep-running", action="store_true",
                   help="after the report, keep the gateway (and dashboard) serving until "
                   "Ctrl-C")
    p.add_argument("--json", action="store_true",
                   help="print the report as one JSON object (progress goes to stderr)")
    p.set_defaults(func=cmd_demo)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_demo(args: argparse.Namespace) -> int:
    from guardstack.cli import CommandError
    from guardstack.demo import report, runner

    missing = [m for m in ("uvicorn", "starlette", "sqlalchemy", "openai")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise CommandError(f"the demo needs {', '.join(missing)}: "
                           "pip install 'guardstack[demo]'")

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    def show(result: runner.DemoResult) -> None:
        if args.json:
            print(json.dumps({**result.report, "gateway_url": result.gateway_url,
                              "dashboard": result.dashboard, "files": result.files,
                              "timings_s": result.timings}), flush=True)
            return
        print()
        print(report.render(result.report))
        print()
        print(f"Gateway: {result.gateway_url} (open mode; any API key). Files: "
              f"{result.files['logs']}")
        if result.dashboard:
            d = result.dashboard
            print(f"Dashboard: {d['url']}  login: {d['user']} / {d['password']}")
        print("Took " + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items()) + ".")
        if args.keep_running:
            print("Serving until Ctrl-C.", flush=True)

    # SIGTERM (a supervisor, `timeout`, a closed terminal) stops the demo the
    # same orderly way as Ctrl-C: the children are stopped on the way out.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # Ctrl-C is how the demo ends, even when started from a shell that made
    # background jobs ignore SIGINT (Python then never installs its handler).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    options = runner.DemoOptions(
        workdir=args.workdir, upstream=args.upstream, model=args.model, port=args.port,
        users=args.users, days=args.days, seed=args.seed, mix=args.mix,
        max_tokens=args.max_tokens, concurrency=args.concurrency, threads=args.threads,
        keep_running=args.keep_running)
    try:
        runner.run(options, say, show)
    except runner.DemoError as exc:
        raise CommandError(str(exc)) from None
    return 0
