"""gpt-oss-safeguard (20B, 120B) as a guardstack detector.

gpt-oss-safeguard classifies against a policy the caller writes: "the policy
is the system message, the content to classify is the user message, and the
model answers in the format the policy asks for" (OpenAI and ROOST,
https://cookbook.openai.com/articles/gpt-oss-safeguard-guide; model card
https://huggingface.co/openai/gpt-oss-safeguard-20b). It goes to
``/v1/chat/completions`` so the server applies the model's harmony template.

The policy is generated from guardstack's taxonomy: for each category what
violates (``covers``) and what does not (``excludes``), which is the
structure the guide recommends (instructions, definitions, criteria for and
against, output format). A guardstack policy file narrows it to the
categories whose action is not ``allow`` for the judged role; ``policy_text``
replaces the generated policy with your own. Either way the policy ends with
:data:`OUTPUT_INSTRUCTIONS`, which asks for one JSON object::

    {"violation": 0 or 1, "categories": ["<category id>", ...], "rationale": "..."}

and :func:`parse_safeguard` reads exactly that. The model reasons before it
answers (``reasoning_effort``, default ``low``), so ``max_tokens`` must leave
room for the reasoning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardstack.classifiers.base import HARM, Subject
from guardstack.classifiers.guard_model import GuardModelBackend, conversation, merge_max
from guardstack.classifiers.openai_backend import (
    Completion,
    GuardOutputError,
    first_label_token,
    label_probability,
)
from guardstack.taxonomy import BY_ID, CATEGORIES, CATEGORY_IDS, Category

OUTPUT_INSTRUCTIONS = """## Output format

Answer with exactly one JSON object and nothing else:
{"violation": 0 or 1, "categories": ["<category id>", ...], "rationale": "<one short sentence>"}
- "violation" is 1 when the content violates at least one category above, otherwise 0.
- "categories" lists the ids (the words before the colon in each heading) of every violated \
category; it is [] when "violation" is 0.
- "rationale" names the deciding reason without repeating harmful details."""


def render_policy(categories: Sequence[Category], role: str) -> str:
    """The system message: guardstack's taxonomy written as a safeguard policy."""
    what = ("a message a user sent to an AI assistant" if role == "prompt" else
            "the last message an AI assistant wrote, shown after the conversation it answers")
    lines = [
        "# Content safety policy",
        "",
        "## Instructions",
        "",
        f"Classify the content in the user message: it is {what}. Decide whether it violates "
        "one or more of the categories below. Judge what the content asks for or provides and "
        "what it would enable, not its topic: sensitive subjects discussed for education, "
        "safety, history, fiction, prevention or support do not violate. When a category's "
        "\"does not violate\" text describes the content, it does not violate that category.",
        "",
        "## Categories",
    ]
    for c in categories:
        lines += ["", f"### {c.id}: {c.name}", f"Violates: {c.covers}",
                  f"Does not violate: {c.excludes}"]
    lines += ["", OUTPUT_INSTRUCTIONS]
    return "\n".join(lines)


def render_content(subject: Subject) -> str:
    """The user message: the judged text, with the conversation for a response."""
    if subject.role == "prompt" and not subject.context:
        return subject.text
    turns = conversation(subject)
    parts = [f"[{m.role}]\n{m.content}" for m in turns[:-1]]
    judged = "assistant" if subject.role == "response" else "user"
    parts.append(f"[{judged} - classify this message]\n{turns[-1].content}")
    return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class SafeguardVerdict:
    violation: bool
    categories: tuple[str, ...]
    rationale: str


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)
_NAMES = {c.name.lower(): c.id for c in CATEGORIES}


def parse_safeguard(text: str) -> SafeguardVerdict:
    """Parse the JSON answer :data:`OUTPUT_INSTRUCTIONS` asks for.

    Tolerates a Markdown code fence and text around the object; category ids
    may also be given by their names. Raises :class:`GuardOutputError` when
    there is no such object or ``violation`` is not 0/1/true/false.
    """
    if not isinstance(text, str) or not text.strip():
        raise GuardOutputError("empty answer")
    body = _FENCE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise GuardOutputError(f"no JSON object in {text.strip()[:80]!r}")
    try:
        data = json.loads(body[start:end + 1])
    except json.JSONDecodeError as exc:
        raise GuardOutputError(f"invalid JSON ({exc.msg}) in {text.strip()[:80]!r}") from None
    if not isinstance(data, dict) or "violation" not in data:
        raise GuardOutputError("JSON answer has no 'violation' field")
    raw = data["violation"]
    if isinstance(raw, str) and raw.strip() in ("0", "1"):
        raw = int(raw)
    if raw not in (0, 1) or (not isinstance(raw, bool | int)):
        raise GuardOutputError(f"'violation' must be 0 or 1, got {raw!r}")
    cats_raw = data.get("categories", [])
    if isinstance(cats_raw, str):
        cats_raw = [cats_raw]
    if not isinstance(cats_raw, list):
        raise GuardOutputError("'categories' must be a list")
    cats: list[str] = []
    for item in cats_raw:
        key = str(item).strip().lower()
        cid = key if key in BY_ID else _NAMES.get(key)
        if cid is not None:  # an unknown id still counts toward the violation itself
            cats.append(cid)
    rationale = data.get("rationale", "")
    return SafeguardVerdict(bool(raw), tuple(dict.fromkeys(cats)), str(rationale))


def violation_probability(completion: Completion, verdict: SafeguardVerdict) -> float:
    """P(violation=1) from the log-probabilities of the value's digit when the
    answer starts with the field (the format asks for it first), else 0/1."""
    if completion.text.lstrip().startswith('{"violation"'):
        tok = first_label_token(completion, ("0", "1"))
        if tok is not None:
            p = label_probability(tok.top, ("1",), ("0",))
            if p is not None:
                return p
    return 1.0 if verdict.violation else 0.0


def _categories_for(policy_file: str | Path | None, role: str,
                    subset: Sequence[str] | None) -> list[Category]:
    cats = list(CATEGORIES)
    if subset is not None:
        unknown = [c for c in subset if c not in BY_ID]
        if unknown:
            raise ValueError(f"unknown category {', '.join(unknown)}; known: "
                             f"{', '.join(CATEGORY_IDS)}")
        cats = [BY_ID[c] for c in subset]
    if policy_file is not None:
        from guardstack.policy import Policy
        from guardstack.verdict import Action

        rp = Policy.load(policy_file).role(role)
        cats = [c for c in cats if rp.rule(c.id).action is not Action.ALLOW]
    return cats


class GptOssSafeguard(GuardModelBackend):
    """``policy_text``: your own policy (a string, or ``@path`` to read a file);
    :data:`OUTPUT_INSTRUCTIONS` is appended unless the text already asks for
    ``"violation"``. ``policy_file``: a guardstack policy YAML whose ``allow``
    categories are left out. ``categories``: a subset of taxonomy ids."""

    name = "gpt-oss-safeguard"
    default_model = "openai/gpt-oss-safeguard-20b"

    def __init__(self, base_url: str | None = None, model: str | None = None,
                 *, policy_text: str | None = None, policy_file: str | Path | None = None,
                 categories: Sequence[str] | str | None = None,
                 reasoning_effort: str | None = "low", max_tokens: int = 1024,
                 **options: Any) -> None:
        super().__init__(base_url, model, **options)
        if isinstance(categories, str):
            categories = [c for c in re.split(r"[,\s]+", categories) if c]
        if reasoning_effort not in (None, "low", "medium", "high"):
            raise ValueError(f"reasoning_effort must be low, medium or high, "
                             f"got {reasoning_effort!r}")
        self.reasoning_effort = reasoning_effort
        self.max_tokens = max_tokens
        self._policies: dict[str, str] = {}
        if policy_text is not None:
            if policy_text.startswith("@"):
                policy_text = Path(policy_text[1:]).read_text(encoding="utf-8")
            if not policy_text.strip():
                raise ValueError("policy_text is empty")
            if '"violation"' not in policy_text:
                policy_text = policy_text.rstrip() + "\n\n" + OUTPUT_INSTRUCTIONS
            self._policies = {"prompt": policy_text, "response": policy_text}
        else:
            for role in ("prompt", "response"):
                cats = _categories_for(policy_file, role, categories)
                if not cats:
                    raise ValueError(f"no categories left to judge for role {role!r}")
                self._policies[role] = render_policy(cats, role)

    def policy(self, role: str) -> str:
        return self._policies[role]

    def messages(self, subject: Subject) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.policy(subject.role)},
                {"role": "user", "content": render_content(subject)}]

    async def judge(self, subject: Subject) -> Mapping[str, float]:
        extra = {"reasoning_effort": self.reasoning_effort} if self.reasoning_effort else {}
        completion = await self.client.chat(self.messages(subject), max_tokens=self.max_tokens,
                                            logprobs=5 if self.logprobs else None, extra=extra)
        verdict = parse_safeguard(completion.text)
        p = violation_probability(completion, verdict)
        scores: dict[str, float] = {HARM: p}
        if verdict.violation:
            for cat in verdict.categories:
                merge_max(scores, cat, p)
        return scores
