"""docs/evaluation.md documents every ``guardstack eval`` option and JSON key."""

import argparse
import re
from pathlib import Path

from guardstack.evaluation import commands, metrics
from guardstack.evaluation.runner import FileResult

DOC = (Path(__file__).resolve().parents[2] / "docs" / "evaluation.md").read_text("utf-8")


def test_every_option_is_documented():
    parser = argparse.ArgumentParser()
    commands.add_commands(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = [o for a in sub.choices["eval"]._actions for o in a.option_strings
               if o.startswith("--") and o != "--help"]
    assert options
    missing = [o for o in options if f"`{o}" not in DOC]
    assert not missing, f"undocumented eval options: {missing}"


def test_every_json_key_is_documented():
    result = FileResult(file="f", confusion=metrics.Confusion(1, 0, 1, 0), auprc=1.0,
                        per_category={}, latency_p50_ms=1.0, latency_p95_ms=2.0,
                        latency_sample=2, throughput_per_s=10.0, errors=0)
    documented = set(re.findall(r"`([a-z_0-9]+)`", DOC))
    missing = [k for k in result.to_dict() if k not in documented]
    assert not missing, f"undocumented JSON keys: {missing}"
