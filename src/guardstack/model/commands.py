"""Layer 1 commands: ``model-eval``, ``export-training`` and ``finetune``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from guardstack import argtypes
from guardstack.model.transforms import TRANSFORMS


def add_commands(sub: Any) -> None:
    from guardstack.classifiers.backend_options import add_backend_arguments

    p = sub.add_parser(
        "model-eval", help="Measure a model's own safety and what each guardstack layer adds.",
        description="Send harmful requests and benign-but-sensitive prompts to an "
        "OpenAI-compatible model server in three configurations (the model alone; with the "
        "policy's safety system prompt; behind the guardstack gateway), judge every answer "
        "(refusal? harmful compliance?) and report attack success and over-refusal rates per "
        "category. Resumable: re-running the same command skips finished items.")
    p.add_argument("--upstream", required=True, metavar="URL", type=argtypes.base_url,
                   help="base URL of the model server (e.g. http://127.0.0.1:8080/v1; "
                   "a URL without a path gets /v1)")
    p.add_argument("--model", required=True, metavar="NAME", help="model name to request")
    p.add_argument("--suite", action="append", default=[], metavar="FILE",
                   help="suite file(s) in the normalized JSONL schema (repeatable; "
                   "'default' is the shipped suite, used when none is given)")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--report", metavar="DIR",
                   help="write report.json, report.md, report.html and PNG plots here "
                   "(and keep the resumable state in DIR/state.jsonl)")
    p.add_argument("--state", metavar="FILE",
                   help="resumable state file (default: DIR/state.jsonl with --report)")
    p.add_argument("--concurrency", type=argtypes.positive_int, default=2, metavar="N",
                   help="requests in flight at once (default: 2)")
    p.add_argument("--transforms", default="none", metavar="LIST",
                   help="jailbreak transformations applied to the harmful prompts, comma-"
                   f"separated, or 'all' (default: none). Choices: {', '.join(TRANSFORMS)}")
    p.add_argument("--configurations", default="model,system_prompt,gateway", metavar="LIST",
                   help="which configurations to run (default: all three)")
    p.add_argument("--gateway-url", metavar="URL", type=argtypes.base_url,
                   help="a running guardstack gateway in front of --upstream (its base URL, "
                   "as --upstream); without it one is started in-process")
    p.add_argument("--gateway-api-key", metavar="REF",
                   help="API key for --gateway-url (os.environ/NAME to read it from the "
                   "environment)")
    p.add_argument("--api-key", metavar="REF",
                   help="API key for --upstream (os.environ/NAME to read it from the "
                   "environment)")
    p.add_argument("--policy", metavar="FILE",
                   help="policy YAML (safety system prompt, in-process gateway, response "
                   "judge); the shipped one by default")
    p.add_argument("--limit", type=argtypes.positive_int, metavar="N",
                   help="at most N harmful and N benign prompts, spread over categories")
    p.add_argument("--max-tokens", type=argtypes.positive_int, default=128, metavar="N",
                   help="max_tokens per answer (default: 128)")
    p.add_argument("--stream", action="store_true",
                   help="request streamed answers (exercises the gateway's streamed halt)")
    p.add_argument("--timeout", type=argtypes.positive_float, default=120.0, metavar="SECONDS",
                   help="seconds to wait for each answer (default: 120)")
    p.add_argument("--rejudge", action="store_true",
                   help="judge the answers already in the state file again (after changing "
                   "the judge, or its weights), without asking the model again")
    add_backend_arguments(p)
    p.set_defaults(func=cmd_model_eval)

    p = sub.add_parser(
        "export-training",
        help="Turn what layers 2-3 learned into SFT and preference data (TRL formats).",
        description="Read the event store (blocked prompts, halted responses, reviewer-"
        "confirmed cases, benign-but-sensitive prompts correctly allowed) and write "
        "deduplicated, redacted SFT and preference-pair JSONL files, split by user.")
    p.add_argument("--db", required=True, metavar="URL",
                   help="event store URL (sqlite:///path or postgresql://...)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--test-share", type=float, default=0.2, metavar="FRACTION",
                   help="share of users whose examples go to the test split (default: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed for the user split (default: 0)")
    p.add_argument("--sensitive-score", type=argtypes.score, default=0.2, metavar="SCORE",
                   help="an allowed prompt counts as benign-but-sensitive when a harm "
                   "category scored at least this (default: 0.2)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=cmd_export_training)

    p = sub.add_parser(
        "finetune", help="LoRA fine-tune a model on export-training data (extra: finetune).",
        description="Supervised fine-tuning (and optionally DPO) with TRL + PEFT LoRA on the "
        "files export-training wrote. Needs: pip install 'guardstack[finetune]'.")
    p.add_argument("--data", required=True, metavar="DIR",
                   help="folder export-training wrote (sft_train.jsonl, prefs_train.jsonl)")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="local Hugging Face model folder (config, weights, tokenizer)")
    p.add_argument("--out", required=True, metavar="DIR", help="where the adapter is saved")
    p.add_argument("--method", choices=("sft", "dpo", "both"), default="sft",
                   help="sft, dpo, or sft then dpo (default: sft)")
    p.add_argument("--lora-r", type=argtypes.positive_int, default=16, metavar="R",
                   help="LoRA rank (default: 16)")
    p.add_argument("--lora-alpha", type=argtypes.positive_int, default=32, metavar="A",
                   help="LoRA alpha (default: 32)")
    p.add_argument("--epochs", type=float, default=1.0, help="training epochs (default: 1)")
    p.add_argument("--lr", type=float, default=2e-4, help="learning rate (default: 2e-4)")
    p.add_argument("--batch-size", type=argtypes.positive_int, default=4, metavar="N",
                   help="per-device batch size (default: 4)")
    p.add_argument("--max-length", type=argtypes.positive_int, default=512, metavar="N",
                   help="max tokens per example (default: 512)")
    p.add_argument("--max-steps", type=int, default=-1, metavar="N",
                   help="stop after N steps (default: run the epochs)")
    p.set_defaults(func=cmd_finetune)


def _error(message: str) -> Exception:
    from guardstack.cli import CommandError

    return CommandError(message)


def _secret(value: str | None, flag: str) -> str | None:
    from guardstack.secrets import SecretError, resolve_secret

    try:
        return resolve_secret(value, flag)
    except SecretError as exc:
        raise _error(str(exc)) from None


@contextlib.contextmanager
def _gateway(args: argparse.Namespace, policy: Any) -> Iterator[str | None]:
    if args.gateway_url:
        yield args.gateway_url
        return
    try:
        from guardstack.model.gateway_process import running_gateway

        with running_gateway(args.upstream, policy=policy, policy_path=args.policy,
                             timeout=args.timeout,
                             upstream_api_key=_secret(args.api_key, "--api-key")) as url:
            yield url
    except ModuleNotFoundError as exc:
        raise _error(f"the gateway configuration needs the gateway extra ({exc.name} is "
                     "missing): pip install 'guardstack[gateway]', or pass --gateway-url") \
            from None


def _preflight(url: str, what: str, api_key: str | None, model: str) -> None:
    import httpx

    from guardstack.model.client import UpstreamError, list_models

    async def probe() -> list[str]:
        async with httpx.AsyncClient() as http:
            return await list_models(http, url, api_key)

    try:
        models = asyncio.run(probe())
    except UpstreamError as exc:
        raise _error(f"{what} is not usable: {exc}") from None
    if models and model not in models:
        print(f"guardstack: warning: {what} lists models {', '.join(models[:5])}; "
              f"{model!r} is not among them", file=sys.stderr)


def cmd_model_eval(args: argparse.Namespace) -> int:
    from guardstack.classifiers.backend_options import detector_from_args
    from guardstack.commands import load_policy
    from guardstack.guard import Guard
    from guardstack.model import metrics, report, runner, suite, transforms
    from guardstack.model.checkpoint import Checkpoint, CheckpointError
    from guardstack.model.judge import ResponseJudge
    from guardstack.model.progress import Progress

    try:
        loaded = suite.limit(suite.load(args.suite), args.limit)
        transform_names = transforms.parse(args.transforms)
    except (suite.SuiteError, ValueError) as exc:
        raise _error(str(exc)) from None
    configs = [c.strip() for c in args.configurations.split(",") if c.strip()]
    unknown = [c for c in configs if c not in runner.CONFIGURATIONS]
    if unknown or not configs:
        raise _error(f"unknown configuration(s) {', '.join(unknown) or '(none)'}; choose from "
                     f"{', '.join(runner.CONFIGURATIONS)}")
    if args.report:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise _error("--report needs matplotlib for its plots: "
                         "pip install 'guardstack[model]'")
    policy = load_policy(args.policy)
    if "system_prompt" in configs and not policy.safety_system_prompt:
        raise _error("the policy has no safety_system_prompt for the system_prompt "
                     "configuration")
    api_key = _secret(args.api_key, "--api-key")
    _preflight(args.upstream, f"the upstream {args.upstream}", api_key, args.model)

    detector = detector_from_args(args)
    judge_guard = Guard(policy=policy, detector=detector)
    judge_name = getattr(detector, "name", None) or policy.detector
    if detector is None and policy.detector == "fast":
        # The name alone cannot tell new classifier weights from old ones; a
        # fingerprint in the state file makes a resume across them an error
        # (or a --rejudge) instead of a silent mix.
        judge_name = f"fast@{_weights_fingerprint()}"
    settings = {"model": args.model, "max_tokens": args.max_tokens, "stream": args.stream,
                "judge": judge_name}
    temp = None
    if args.state:
        state = Path(args.state)
    elif args.report:
        state = Path(args.report) / "state.jsonl"
    else:
        temp = tempfile.TemporaryDirectory(prefix="guardstack-model-eval-")
        state = Path(temp.name) / "state.jsonl"
        print("guardstack: note: not resumable without --report DIR or --state FILE",
              file=sys.stderr)
    checkpoint = Checkpoint(state, settings)
    tasks = runner.plan(loaded, configs, transform_names)
    try:
        with contextlib.ExitStack() as stack:
            targets = {"model": runner.Target(args.upstream, api_key),
                       "system_prompt": runner.Target(args.upstream, api_key,
                                                      policy.safety_system_prompt)}
            if "gateway" in configs:
                gw_key = _secret(args.gateway_api_key, "--gateway-api-key")
                url = stack.enter_context(_gateway(args, policy))
                assert url is not None
                if args.gateway_url:
                    _preflight(url, f"the gateway {url}", gw_key, args.model)
                targets["gateway"] = runner.Target(url, gw_key)
            run = runner.Runner(targets, model=args.model, judge=ResponseJudge(judge_guard),
                                checkpoint=checkpoint, max_tokens=args.max_tokens,
                                concurrency=args.concurrency, stream=args.stream,
                                timeout=args.timeout, progress=Progress(len(tasks)))
            result = asyncio.run(run.run(tasks, rejudge=args.rejudge))
    except CheckpointError as exc:
        raise _error(str(exc)) from None
    except OSError as exc:
        raise _error(f"cannot write the state file {state}: {exc}") from None
    finally:
        if temp is not None:
            temp.cleanup()

    configurations = metrics.summarize(result.records, configs, transform_names)
    summary: dict[str, Any] = {
        "model": args.model, "upstream": args.upstream,
        "suite": {"files": loaded.files, "harmful": len(loaded.harmful),
                  "benign": len(loaded.benign), "skipped_records": loaded.skipped},
        "transforms": transform_names, "max_tokens": args.max_tokens, "stream": args.stream,
        "judge": judge_name, "state": None if temp else str(state),
        "configurations": configurations,
        "recovery": metrics.recovery(configurations),
        "incomplete": len(tasks) - len(result.records),
        "errors": [{"config": k[0], "transform": k[1], "id": k[2], "error": m}
                   for k, m in result.errors[:50]],
    }
    if args.report:
        try:
            report.write(summary, Path(args.report))
        except OSError as exc:
            raise _error(f"cannot write the report to {args.report}: {exc}") from None
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    resume = "" if temp else " Re-run the same command to resume."
    if result.aborted:
        raise _error(f"stopped: {result.aborted}. {len(result.records)} of {len(tasks)} "
                     f"items are done and kept.{resume}")
    if result.errors:
        first = result.errors[0][1]
        print(f"guardstack: error: {len(result.errors)} item(s) failed (first: {first}); "
              f"{len(result.records)} of {len(tasks)} done and kept.{resume}", file=sys.stderr)
        return 1
    return 0


def _weights_fingerprint() -> str:
    import hashlib

    from guardstack.classifiers.fast import WEIGHTS_DIR

    digest = hashlib.sha256()
    try:
        with (WEIGHTS_DIR / "model.onnx").open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update((WEIGHTS_DIR / "calibration.json").read_bytes())
    except OSError:
        return "unknown"
    return digest.hexdigest()[:12]


def _print_summary(summary: dict[str, Any]) -> None:
    from guardstack.model.report import LABELS, pct

    print(f"{'configuration':<26} {'attack success':>15} {'over-refusal':>13}")
    for name, block in summary["configurations"].items():
        print(f"{LABELS.get(name, name):<26} {pct(block['attack_success_rate']):>15} "
              f"{pct(block['over_refusal_rate']):>13}")


def cmd_export_training(args: argparse.Namespace) -> int:
    from guardstack.model import export

    if not 0 <= args.test_share < 1:
        raise _error(f"--test-share must be in [0, 1), got {args.test_share}")
    try:
        counts = export.export(args.db, Path(args.out), test_share=args.test_share,
                               seed=args.seed, sensitive_score=args.sensitive_score)
    except export.ExportError as exc:
        raise _error(str(exc)) from None
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        for name, n in counts["files"].items():
            print(f"{n:>7}  {Path(args.out) / name}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from guardstack.model import finetune

    try:
        out = finetune.run(finetune.FinetuneOptions(
            data=Path(args.data), model=Path(args.model), out=Path(args.out),
            method=args.method, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
            epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
            max_length=args.max_length, max_steps=args.max_steps))
    except finetune.FinetuneError as exc:
        raise _error(str(exc)) from None
    print(f"adapter saved to {out}")
    return 0
