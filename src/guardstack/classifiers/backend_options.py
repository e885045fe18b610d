"""The command-line options that select a guard-model backend, shared by
``guardstack check`` and ``guardstack eval``::

    guardstack check --backend llama-guard-3 --backend-url http://gpu:8000/v1 \\
        --backend-model meta-llama/Llama-Guard-3-8B --backend-api-key os.environ/GUARD_KEY \\
        --json "text"

A command calls :func:`add_backend_arguments` on its parser and
:func:`detector_from_args` on the parsed arguments; ``None`` means "no
``--backend``: use the policy's detector".
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from guardstack import argtypes
from guardstack.classifiers.base import Detector

#: Backend name -> what it is (for --help and docs/backends.md).
BACKENDS: dict[str, str] = {
    "llama-guard-3": "Llama Guard 3 (1B/8B), prompt rendered from its chat template",
    "llama-guard-4": "Llama Guard 4 (12B), rendered by the server's chat template",
    "qwen3guard": "Qwen3Guard-Gen (0.6B/4B/8B)",
    "shieldgemma": "ShieldGemma (2B/9B/27B), one call per policy",
    "gpt-oss-safeguard": "gpt-oss-safeguard (20B/120B), guardstack taxonomy as the policy",
    "granite-guardian": "Granite Guardian 3.x, one call per risk",
    "cascade": "fast classifier first, uncertain cases to --cascade-guard",
}

DEFAULT_URL = "http://127.0.0.1:8000/v1"




def _band(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (e.g. 0.2,0.8), got {text!r}"
                                         ) from None
    if not 0 <= low <= high <= 1:
        raise argparse.ArgumentTypeError(f"need 0 <= LOW <= HIGH <= 1, got {text!r}")
    return low, high


def _label_band(text: str) -> tuple[str, tuple[float, float]]:
    label, sep, rest = text.partition("=")
    if not sep or not label:
        raise argparse.ArgumentTypeError(f"expected LABEL=LOW,HIGH, got {text!r}")
    return label.strip(), _band(rest)


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip().replace("-", "_"), _value(value.strip())


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``--backend*`` and ``--cascade*`` options to a command."""
    g = parser.add_argument_group(
        "guard-model backend",
        "Judge with a guard model on an OpenAI-compatible server (vLLM, llama.cpp, ...) "
        "instead of the policy's detector. See docs/backends.md.")
    g.add_argument("--backend", choices=sorted(BACKENDS), default=None,
                   help="guard model backend: " + "; ".join(f"{k}: {v}"
                                                         for k, v in BACKENDS.items()))
    g.add_argument("--backend-url", default=None, metavar="URL",
                   help="server base URL (default: $GUARDSTACK_BACKEND_URL or "
                        f"{DEFAULT_URL})")
    g.add_argument("--backend-model", default=None, metavar="NAME",
                   help="model name the server serves (default: the model's Hugging Face id)")
    g.add_argument("--backend-api-key", default=None, metavar="REF",
                   help="API key reference: os.environ/NAME (recommended) or a literal key")
    g.add_argument("--backend-timeout", type=argtypes.positive_float,
                   default=10.0, metavar="SECONDS",
                   help="timeout per HTTP attempt (default: 10)")
    g.add_argument("--backend-retries", type=argtypes.count, default=2, metavar="N",
                   help="retries after a failed attempt, with backoff (default: 2)")
    g.add_argument("--backend-concurrency", type=argtypes.count, default=8, metavar="N",
                   help="texts judged at once (default: 8)")
    g.add_argument("--backend-option", type=_option, action="append", default=[],
                   metavar="KEY=VALUE",
                   help="backend-specific setting, repeatable, e.g. controversial=loose "
                        "(qwen3guard), policies=hate,sexual (shieldgemma), risks=harm,jailbreak "
                        "(granite-guardian), exclude=S6,S8 (llama-guard-3), "
                        "policy_text=@file.md (gpt-oss-safeguard)")
    g.add_argument("--cascade-guard", choices=sorted(set(BACKENDS) - {"cascade"}),
                   default="llama-guard-3",
                   help="with --backend cascade: the guard model for uncertain cases")
    g.add_argument("--cascade-band", type=_band, default=(0.2, 0.8), metavar="LOW,HIGH",
                   help="with --backend cascade: harm scores in [LOW, HIGH) escalate "
                        "(default: 0.2,0.8)")
    g.add_argument("--cascade-band-for", type=_label_band, action="append", default=[],
                   metavar="LABEL=LOW,HIGH",
                   help="with --backend cascade: an uncertain band for one category, repeatable")


def detector_from_args(args: argparse.Namespace) -> Detector | None:
    """The detector the ``--backend*`` options describe, or ``None`` without
    ``--backend``. Invalid settings raise ``CommandError`` (one-line error)."""
    name = getattr(args, "backend", None)
    if not name:
        return None
    from guardstack import detectors
    from guardstack.cli import CommandError
    from guardstack.secrets import SecretError, resolve_secret

    try:  # read by the backend per call; an unset variable is an error now, not per text
        resolve_secret(args.backend_api_key, "--backend-api-key")
    except SecretError as exc:
        raise CommandError(str(exc)) from None
    options: dict[str, Any] = {
        "base_url": args.backend_url or os.environ.get("GUARDSTACK_BACKEND_URL") or DEFAULT_URL,
        "api_key": args.backend_api_key,
        "timeout": args.backend_timeout,
        "max_retries": args.backend_retries,
        "concurrency": max(1, args.backend_concurrency),
    }
    if args.backend_model:
        options["model"] = args.backend_model
    options.update(dict(args.backend_option))
    try:
        if name == "cascade":
            low, high = args.cascade_band
            cascade_keys = {"on_guard_error", "speculative"}
            cascade_opts = {k: options.pop(k) for k in list(options) if k in cascade_keys}
            # Built now, so a bad guard setting fails here and not per request.
            guard = detectors.load(args.cascade_guard, **options)
            return detectors.load("cascade", guard=guard, low=low, high=high,
                                  bands=dict(args.cascade_band_for), **cascade_opts)
        return detectors.load(name, **options)
    except TypeError as exc:
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if unknown:
            raise CommandError(f"--backend {name}: no option {unknown.group(1)!r} "
                               "(see docs/backends.md for each backend's options)") from None
        raise CommandError(f"--backend {name}: {exc}") from None
    except (ValueError, LookupError, OSError) as exc:
        raise CommandError(f"--backend {name}: {exc}") from None
