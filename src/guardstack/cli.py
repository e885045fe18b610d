"""The ``guardstack`` command line. Each area contributes its commands through
``add_commands(subparsers)`` in ``guardstack/<area>/commands.py``; this module
only wires them together and turns expected failures into one-line errors."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from guardstack import __version__

# Areas whose commands are optional: a missing extra (say, the gateway's
# dependencies) hides its commands instead of breaking the whole CLI.
AREAS = (
    "guardstack.commands",
    "guardstack.evaluation.commands",
    "guardstack.training.commands",
    "guardstack.gateway.commands",
    "guardstack.store.commands",
    "guardstack.simulate.commands",
    "guardstack.offline.commands",
    "guardstack.model.commands",
    "guardstack.dashboard.commands",
    "guardstack.demo.commands",
)


class CommandError(Exception):
    """An expected failure: printed as ``guardstack: error: ...``, exit 2."""


def report_error(message: str) -> int:
    """Print ``guardstack: error: MESSAGE`` on standard error; the exit code 2.
    For handlers that turn an exception into an exit code themselves."""
    print(f"guardstack: error: {message}", file=sys.stderr)
    return 2


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in the form every command's errors take:
    one line ``guardstack: error: ...`` and exit 2 (docs/cli.md), naming the
    command's --help instead of printing its usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"guardstack: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="guardstack",
        description="Safety layers for open-weight LLM deployments.",
    )
    parser.add_argument("--version", action="version", version=f"guardstack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in AREAS:
        try:
            module = importlib.import_module(area)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == area or not exc.name.startswith("guardstack")):
                continue  # area not built yet, or its optional extra is not installed
            raise
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        return report_error(str(exc))
    except KeyboardInterrupt:
        print("guardstack: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`guardstack ... | head`): stop quietly, and
        # point stdout at devnull so the interpreter's final flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
