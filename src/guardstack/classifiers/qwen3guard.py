"""Qwen3Guard-Gen (0.6B, 4B, 8B) as a guardstack detector.

Prompt: Qwen3Guard-Gen's safety instructions live in its own chat template,
so the documented use (https://github.com/QwenLM/Qwen3Guard README, "Deployment
with SGLang and vLLM") sends the plain conversation to
``/v1/chat/completions``: ``[{"role": "user", ...}]`` to moderate a prompt,
``[..., {"role": "assistant", ...}]`` to moderate a response. We do the same;
the golden test pins those request bodies.

Output (README): ``Safety: Safe|Unsafe|Controversial``, ``Categories: ...``
(``None`` or one or more of the nine names below) and, for responses,
``Refusal: Yes|No``. ``controversial="strict"`` counts Controversial as
unsafe, ``"loose"`` as safe (the two settings the Qwen3Guard technical report
defines). Score: from the log-probabilities of the token that spells the
label when the server returns them, else 1.0 / 0.0 from the text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from guardstack.classifiers.base import HARM, Subject
from guardstack.classifiers.guard_model import GuardModelBackend, conversation, merge_max
from guardstack.classifiers.openai_backend import Completion, GuardOutputError, first_label_token

#: Qwen3Guard category names (README's extraction regex) -> guardstack ids.
CATEGORY_MAP: dict[str, tuple[str, ...]] = {
    "Violent": ("violent_crime",),
    "Non-violent Illegal Acts": ("nonviolent_crime",),
    "Sexual Content or Sexual Acts": ("sexual",),
    "PII": ("privacy",),
    "Suicide & Self-Harm": ("self_harm",),
    # Bias, discrimination, hate speech, harassment, threats, defamation.
    "Unethical Acts": ("hate", "harassment"),
    # Deliberate political disinformation.
    "Politically Sensitive Topics": ("influence_ops",),
    "Copyright Violation": (),
    "Jailbreak": ("jailbreak",),
}

_LABELS = ("Safe", "Unsafe", "Controversial")
_SAFETY = re.compile(r"^\s*safety\s*:\s*(\w+)\s*$", re.IGNORECASE | re.MULTILINE)
_CATEGORIES = re.compile(r"^\s*categories\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
_REFUSAL = re.compile(r"^\s*refusal\s*:\s*(\w+)\s*$", re.IGNORECASE | re.MULTILINE)

Controversial = Literal["strict", "loose"]


@dataclass(frozen=True, slots=True)
class QwenVerdict:
    safety: str  # "Safe" | "Unsafe" | "Controversial"
    categories: tuple[str, ...]
    refusal: bool | None


def parse_qwen3guard(text: str) -> QwenVerdict:
    """Parse a Qwen3Guard-Gen answer; :class:`GuardOutputError` when it is not
    one of the documented forms (case and extra whitespace are tolerated)."""
    if not isinstance(text, str) or not text.strip():
        raise GuardOutputError("empty answer")
    m = _SAFETY.search(text)
    if m is None:
        raise GuardOutputError(f"no 'Safety:' line in {text.strip()[:80]!r}")
    label = {s.lower(): s for s in _LABELS}.get(m.group(1).lower())
    if label is None:
        raise GuardOutputError(f"unknown safety label {m.group(1)!r}")
    cats: list[str] = []
    cm = _CATEGORIES.search(text)
    if cm is not None:
        known = {name.lower(): name for name in CATEGORY_MAP}
        for raw in re.split(r"\s*,\s*", cm.group(1).strip()):
            if not raw or raw.lower() == "none":
                continue
            name = known.get(raw.lower())
            if name is None:
                raise GuardOutputError(f"unknown category {raw!r}")
            cats.append(name)
    refusal: bool | None = None
    rm = _REFUSAL.search(text)
    if rm is not None:
        value = rm.group(1).lower()
        if value not in ("yes", "no"):
            raise GuardOutputError(f"refusal must be Yes or No, got {rm.group(1)!r}")
        refusal = value == "yes"
    return QwenVerdict(label, tuple(dict.fromkeys(cats)), refusal)


def unsafe_score(completion: Completion, verdict: QwenVerdict, mode: Controversial) -> float:
    unsafe_labels = {"unsafe", "controversial"} if mode == "strict" else {"unsafe"}
    tok = first_label_token(completion, _LABELS)
    if tok is not None and tok.top:
        mass = {"safe": 0.0, "unsafe": 0.0, "controversial": 0.0}
        for t, lp in tok.top.items():
            key = t.strip().lower()
            # Tokenizers may split "Controversial"; its first piece still
            # identifies it against "Safe"/"Unsafe".
            for label in mass:
                if key and label.startswith(key) and len(key) >= 3:
                    mass[label] += math.exp(lp)
                    break
        total = sum(mass.values())
        if total > 0:
            return sum(v for k, v in mass.items() if k in unsafe_labels) / total
    return 1.0 if verdict.safety.lower() in unsafe_labels else 0.0


class Qwen3Guard(GuardModelBackend):
    name = "qwen3guard"
    default_model = "Qwen/Qwen3Guard-Gen-4B"

    def __init__(self, base_url: str | None = None, model: str | None = None,
                 *, controversial: Controversial = "strict", max_tokens: int = 32,
                 **options: Any) -> None:
        super().__init__(base_url, model, **options)
        if controversial not in ("strict", "loose"):
            raise ValueError(f"controversial must be 'strict' or 'loose', got {controversial!r}")
        self.controversial: Controversial = controversial
        self.max_tokens = max_tokens

    def messages(self, subject: Subject) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in conversation(subject)]

    async def judge(self, subject: Subject) -> Mapping[str, float]:
        completion = await self.client.chat(self.messages(subject), max_tokens=self.max_tokens,
                                            logprobs=5 if self.logprobs else None)
        verdict = parse_qwen3guard(completion.text)
        p = unsafe_score(completion, verdict, self.controversial)
        scores: dict[str, float] = {HARM: p}
        for name in verdict.categories:
            for cat in CATEGORY_MAP[name]:
                merge_max(scores, cat, p)
        return scores
