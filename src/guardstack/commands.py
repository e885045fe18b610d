"""Core commands: ``check``, ``policy`` and ``taxonomy``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from guardstack import taxonomy
from guardstack.classifiers.backend_options import add_backend_arguments, detector_from_args
from guardstack.policy import SETTINGS, Policy, PolicyError


def add_commands(sub: Any) -> None:
    p = sub.add_parser("check", help="Judge one text (a prompt or a model response).",
                       description="Judge one text and print the verdict. Exit 0 when allowed, "
                       "1 when flagged or blocked.")
    p.add_argument("text", help="text to judge; '-' reads standard input")
    p.add_argument("--role", choices=("prompt", "response", "tool"), default="prompt",
                   help="judge the text as a user prompt, as a model response, or as a tool "
                        "result an agent reads (the injection rules, under the policy's "
                        "tool_output; flag where it is off)")
    p.add_argument("--prompt", dest="context_prompt", default=None,
                   help="with --role response: the prompt the response answers")
    p.add_argument("--policy", default=None, help="policy YAML file (default: the shipped one)")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    add_backend_arguments(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("policy", help="Validate a policy file or list its settings.")
    p.add_argument("file", nargs="?", help="policy YAML file to validate")
    p.add_argument("--settings", action="store_true",
                   help="print the settings table; with FILE, the values FILE resolves to")
    p.add_argument("--show-default", action="store_true", help="print the shipped policy")
    p.set_defaults(func=cmd_policy)

    p = sub.add_parser("taxonomy", help="List the harm categories and their mappings.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_taxonomy)


def load_policy(path: str | None) -> Policy:
    from guardstack.cli import CommandError

    try:
        return Policy.load(path) if path else Policy.default()
    except PolicyError as exc:
        raise CommandError(str(exc)) from None


def read_text_arg(text: str) -> str:
    if text != "-":
        return text
    from guardstack.normalize import decode_bytes

    return decode_bytes(sys.stdin.buffer.read())


def cmd_check(args: argparse.Namespace) -> int:
    from guardstack.guard import Guard

    if args.context_prompt is not None and args.role != "response":
        from guardstack.cli import CommandError

        raise CommandError("--prompt is the prompt an answer replies to: use it with "
                           "--role response")
    policy = load_policy(args.policy)
    if args.role == "tool":
        # The injection rules need no classifier: nothing is loaded.
        from guardstack.gateway import tool_results

        [verdict] = tool_results.verdicts(
            [read_text_arg(args.text)], tool_results.reporting(policy.tool_output),
            other_languages=policy.tool_output_other_languages)
    else:
        guard = Guard(policy=policy, detector=detector_from_args(args))
        context = [{"role": "user", "content": args.context_prompt}] if args.context_prompt \
            else []
        verdict = guard.check(read_text_arg(args.text), role=args.role, context=context)
    if args.json:
        print(verdict.to_json())
    else:
        top = sorted(verdict.scores.items(), key=lambda kv: -kv[1])[:4]
        print(f"{verdict.decision.value.upper()}  ({verdict.role}, status {verdict.status.value}, "
              f"{verdict.latency_ms:.1f} ms)")
        for name, values in (("categories", verdict.categories), ("topics", verdict.topics),
                             ("blocklists", verdict.blocklists)):
            if values:
                print(f"  {name}: {', '.join(values)}")
        if verdict.reason:
            print(f"  reason: {verdict.reason}")
        print("  top scores: " + ", ".join(f"{k} {v:.3f}" for k, v in top))
    return 0 if not verdict.flagged else 1


def cmd_policy(args: argparse.Namespace) -> int:
    if args.settings and not args.file:
        for s in SETTINGS:
            print(f"{s.name}\n    default: {s.default!r}\n    {s.help}")
        return 0
    if args.show_default:
        from importlib import resources

        print(resources.files("guardstack.policies").joinpath("default.yaml").read_text("utf-8"))
        return 0
    policy = load_policy(args.file)
    parts = [f"detector {policy.detector}", f"mode {policy.mode}"]
    if policy.blocklists:
        parts.append("blocklists: " + ", ".join(f"{b.id} (mask)" if b.mask else b.id
                                                for b in policy.blocklists))
    if policy.topics:
        parts.append("topics: " + ", ".join(t.id for t in policy.topics))
    if policy.allowed_models:
        parts.append(f"allowed models: {', '.join(policy.allowed_models)}")
    print(f"{policy.source}: ok ({'; '.join(parts)})")
    if args.settings:
        for name, value in policy.effective().items():
            print(f"{name}: {json.dumps(value, ensure_ascii=False)}")
    return 0


def cmd_taxonomy(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps([{"id": c.id, "name": c.name, "covers": c.covers,
                           "excludes": c.excludes, "s_codes": list(c.s_codes),
                           "openai": list(c.openai), "is_technique": c.is_technique}
                          for c in taxonomy.CATEGORIES], indent=2))
        return 0
    for c in taxonomy.CATEGORIES:
        codes = ",".join(c.s_codes) or "-"
        names = ",".join(c.openai) or "-"
        print(f"{c.id:20} {c.name}  [S: {codes}] [OpenAI: {names}]")
    return 0
