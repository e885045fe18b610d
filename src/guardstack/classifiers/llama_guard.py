"""Llama Guard 3 (1B, 8B) and Llama Guard 4 (12B) as guardstack detectors.

Prompt (Llama Guard 3). The exact string the ``chat_template`` of
meta-llama/Llama-Guard-3-8B renders (tokenizer_config.json; the same text as
``PROMPT_TEMPLATE_3`` / ``build_default_prompt`` in meta-llama/llama-recipes
``src/llama_recipes/inference/prompt_format_utils.py`` and the prompt format
page https://www.llama.com/docs/model-cards-and-prompt-formats/llama-guard-3/):
the task line naming the judged side (``User`` or ``Agent``), the categories
S1-S14, the conversation as ``User:``/``Agent:`` turns, and "Provide your
safety assessment for ONLY THE LAST {User|Agent} message in the above
conversation:" with the two bullet lines.

Why ``/v1/completions`` with the rendered prompt rather than chat: the 8B
chat template hard-codes S1-S14, so category subsets and custom category
text are only possible by rendering the prompt ourselves (as Meta's own
customization notebook does); sending that through ``/v1/chat/completions``
would wrap it in the template a second time. The leading ``<|begin_of_text|>``
is not sent because servers add BOS when they tokenize a completion prompt.
``mode="chat"`` sends plain messages instead and lets the server's template
render them (default categories only).

Llama Guard 4: ``mode="chat"`` (the default). Its chat template (HF
meta-llama/Llama-Guard-4-12B) reads ``categories`` and
``excluded_category_keys`` itself, which vLLM forwards from the request's
``chat_template_kwargs``, so the model's own template renders the prompt
exactly and custom categories still work.

Output (model card): ``safe``, or ``unsafe`` and on the next line the
violated codes, e.g. ``unsafe\\nS1,S10``. Score: "we look at the probability
for the first token, and use that as the 'unsafe' class probability"
(https://github.com/meta-llama/PurpleLlama/blob/main/Llama-Guard3/8B/MODEL_CARD.md):
P("unsafe") renormalized over safe/unsafe from the first token's
log-probabilities, or 1.0 / 0.0 from the text when the server gives none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from guardstack.classifiers.base import HARM, Subject
from guardstack.classifiers.guard_model import GuardModelBackend, conversation, merge_max
from guardstack.classifiers.openai_backend import (
    Completion,
    GuardOutputError,
    first_label_token,
    label_probability,
)
from guardstack.taxonomy import LLAMA_GUARD_3

BOS = "<|begin_of_text|>"

#: The category block of the Llama-Guard-3-8B chat template, verbatim (its
#: short names differ from the model card's table: "Sex Crimes", not
#: "Sex-Related Crimes").
DEFAULT_CATEGORIES: dict[str, str] = {
    "S1": "Violent Crimes.",
    "S2": "Non-Violent Crimes.",
    "S3": "Sex Crimes.",
    "S4": "Child Exploitation.",
    "S5": "Defamation.",
    "S6": "Specialized Advice.",
    "S7": "Privacy.",
    "S8": "Intellectual Property.",
    "S9": "Indiscriminate Weapons.",
    "S10": "Hate.",
    "S11": "Self-Harm.",
    "S12": "Sexual Content.",
    "S13": "Elections.",
    "S14": "Code Interpreter Abuse.",
}

#: S-code -> guardstack category (None: counted in ``harm`` only).
CATEGORY_MAP: dict[str, str | None] = {code: cat for code, (_, cat) in LLAMA_GUARD_3.items()}

_CODE = re.compile(r"S\d{1,2}")

Mode = Literal["completion", "chat"]


def agent_label(role: str) -> str:
    return "Agent" if role == "assistant" else "User"


def render_llama_guard_3(subject: Subject, categories: Mapping[str, str] | None = None,
                         exclude: Sequence[str] = ()) -> str:
    """The Llama Guard 3 prompt for ``subject``, exactly as the 8B chat template
    renders it (with ``categories``/``exclude``: the same frame with that
    category block, the form Meta's customization recipe uses)."""
    turns = conversation(subject)
    judged = agent_label(turns[-1].role)
    cats = categories if categories is not None else DEFAULT_CATEGORIES
    block = "\n".join(f"{code}: {text}" for code, text in cats.items() if code not in exclude)
    convo = "".join(f"{agent_label(m.role)}: {m.content.strip()}\n\n" for m in turns)
    return (
        f"{BOS}<|start_header_id|>user<|end_header_id|>\n\n"
        f"Task: Check if there is unsafe content in '{judged}' messages in conversations "
        "according our safety policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{block}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n{convo}<END CONVERSATION>\n\n"
        f"Provide your safety assessment for ONLY THE LAST {judged} message in the above "
        "conversation:\n"
        " - First line must read 'safe' or 'unsafe'.\n"
        " - If unsafe, a second line must include a comma-separated list of violated "
        "categories.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def chat_messages(subject: Subject, *, typed_parts: bool) -> list[dict[str, Any]]:
    """The conversation as chat messages. Llama Guard 4's template expects
    content as a list of typed parts; Llama Guard 3's expects a string."""
    out: list[dict[str, Any]] = []
    for m in conversation(subject):
        content: Any = [{"type": "text", "text": m.content}] if typed_parts else m.content
        out.append({"role": m.role, "content": content})
    return out


def parse_llama_guard(text: str) -> tuple[bool, list[str]]:
    """``(unsafe, codes)`` from a Llama Guard answer.

    Accepts the documented forms with any case and surrounding whitespace
    (``safe``; ``unsafe``; ``unsafe\\nS1,S10``; codes separated by commas and
    spaces). Raises :class:`GuardOutputError` for anything else.
    """
    if not isinstance(text, str) or not text.strip():
        raise GuardOutputError("empty answer")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    verdict = lines[0].lower()
    if verdict == "safe":
        return False, []
    if verdict != "unsafe":
        raise GuardOutputError(f"first line must be 'safe' or 'unsafe', got {lines[0][:60]!r}")
    if len(lines) < 2:
        return True, []
    parts = [p for p in re.split(r"[,\s]+", lines[1].upper()) if p]
    if not parts or any(not _CODE.fullmatch(p) for p in parts):
        raise GuardOutputError(f"second line must list category codes, got {lines[1][:60]!r}")
    return True, list(dict.fromkeys(parts))


def unsafe_probability(completion: Completion, unsafe: bool) -> float:
    tok = first_label_token(completion, ("safe", "unsafe"))
    if tok is not None:
        p = label_probability(tok.top, ("unsafe",), ("safe",))
        if p is not None:
            return p
    return 1.0 if unsafe else 0.0


class LlamaGuard(GuardModelBackend):
    """Llama Guard behind an OpenAI-compatible server.

    ``categories``: custom ``{code: text}`` replacing S1-S14 (text as in the
    template: ``"Name."`` or ``"Name.\\nDescription"``); ``exclude``: codes to
    leave out; ``category_map``: ``{code: guardstack id or None}`` for custom
    codes (defaults to the S1-S14 mapping in :mod:`guardstack.taxonomy`).
    """

    name = "llama-guard-3"
    default_model = "meta-llama/Llama-Guard-3-8B"
    version = 3
    default_mode: Mode = "completion"

    def __init__(self, base_url: str | None = None, model: str | None = None,
                 *, mode: Mode | None = None, categories: Mapping[str, str] | None = None,
                 exclude: Sequence[str] = (), category_map: Mapping[str, str | None] | None = None,
                 send_bos: bool = False, max_tokens: int = 10, **options: Any) -> None:
        super().__init__(base_url, model, **options)
        self.mode: Mode = mode or self.default_mode
        if self.mode not in ("completion", "chat"):
            raise ValueError(f"mode must be 'completion' or 'chat', got {self.mode!r}")
        if isinstance(exclude, str):
            exclude = [c for c in re.split(r"[,\s]+", exclude) if c]
        self.categories = dict(categories) if categories is not None else None
        self.exclude = tuple(c.upper() for c in exclude)
        if self.version == 3 and self.mode == "chat" and (self.categories or self.exclude):
            raise ValueError("Llama Guard 3's chat template hard-codes S1-S14: use "
                             "mode='completion' for custom or excluded categories")
        self.category_map = {**CATEGORY_MAP, **(category_map or {})}
        self.send_bos = send_bos
        self.max_tokens = max_tokens

    def render(self, subject: Subject) -> str:
        return render_llama_guard_3(subject, self.categories, self.exclude)

    def request(self, subject: Subject) -> tuple[str, dict[str, Any]]:
        """The endpoint and body sent for ``subject`` (without model/sampling)."""
        if self.mode == "completion":
            prompt = self.render(subject)
            if not self.send_bos:
                prompt = prompt.removeprefix(BOS)
            return "completion", {"prompt": prompt}
        body: dict[str, Any] = {"messages": chat_messages(subject, typed_parts=self.version == 4)}
        kwargs: dict[str, Any] = {}
        if self.categories is not None:
            kwargs["categories"] = self.categories
        if self.exclude:
            kwargs["excluded_category_keys"] = list(self.exclude)
        if kwargs:
            body["chat_template_kwargs"] = kwargs
        return "chat", body

    async def judge(self, subject: Subject) -> Mapping[str, float]:
        kind, body = self.request(subject)
        logprobs = 5 if self.logprobs else None
        if kind == "completion":
            completion = await self.client.complete(body["prompt"], max_tokens=self.max_tokens,
                                                    logprobs=logprobs)
        else:
            extra = {k: v for k, v in body.items() if k != "messages"}
            completion = await self.client.chat(body["messages"], max_tokens=self.max_tokens,
                                                logprobs=logprobs, extra=extra)
        unsafe, codes = parse_llama_guard(completion.text)
        p = unsafe_probability(completion, unsafe)
        scores: dict[str, float] = {HARM: p}
        for code in codes:
            cat = self.category_map.get(code)
            if cat:
                merge_max(scores, cat, p)
        return scores


class LlamaGuard3(LlamaGuard):
    pass


class LlamaGuard4(LlamaGuard):
    name = "llama-guard-4"
    default_model = "meta-llama/Llama-Guard-4-12B"
    version = 4
    default_mode: Mode = "chat"

    def render(self, subject: Subject) -> str:
        # Only for mode="completion" (servers without chat_template_kwargs):
        # Llama Guard 3's frame in Llama 4 header tokens. An approximation -
        # the LG4 template's exact wording was not verifiable here (gated repo),
        # which is why the default mode lets the server's own template render.
        text = super().render(subject)
        return (text.replace("<|start_header_id|>", "<|header_start|>")
                .replace("<|end_header_id|>", "<|header_end|>")
                .replace("<|eot_id|>", "<|eot|>"))
