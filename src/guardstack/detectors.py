"""Finding detectors by name through the ``guardstack.detectors`` entry-point
group; the built-in fast classifier registers there like any plugin would."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from guardstack.classifiers.base import Detector

GROUP = "guardstack.detectors"

# Used only when the package runs from a source tree without being installed,
# so its own entry points are not visible.
_BUILTIN = {
    "fast": "guardstack.classifiers.fast:FastClassifier",
    "llama-guard-3": "guardstack.classifiers.llama_guard:LlamaGuard3",
    "llama-guard-4": "guardstack.classifiers.llama_guard:LlamaGuard4",
    "qwen3guard": "guardstack.classifiers.qwen3guard:Qwen3Guard",
    "shieldgemma": "guardstack.classifiers.shieldgemma:ShieldGemma",
    "gpt-oss-safeguard": "guardstack.classifiers.gpt_oss_safeguard:GptOssSafeguard",
    "granite-guardian": "guardstack.classifiers.granite_guardian:GraniteGuardian",
    "cascade": "guardstack.classifiers.cascade:Cascade",
}


def available() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    return {**_BUILTIN, **found}


def load(name: str, **options: Any) -> Detector:
    target = available().get(name)
    if target is None:
        raise LookupError(
            f"no detector named {name!r}; installed: {', '.join(sorted(available()))}"
        )
    module, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module), attr)
    detector: Detector = factory(**options)
    return detector
