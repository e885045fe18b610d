"""ShieldGemma (2B, 9B, 27B) as a guardstack detector.

Prompt: the templates and harm definitions of Google's ShieldGemma model card
and its inference notebook (https://huggingface.co/google/shieldgemma-2b,
https://ai.google.dev/gemma/docs/shieldgemma): ``PROMPT_ONLY_TEMPLATE`` for a
user prompt, ``PROMPT_RESPONSE_TEMPLATE`` for a model response with its
prompt, ``harm_definition()`` for the policy line ("The prompt shall not
contain or seek generation of content that ..." / "The chatbot shall not
generate content that ..."). The strings are kept byte for byte, including
the card's line breaks and the double space in "to be sure  we answer" of the
response template. The prompt goes to ``/v1/completions`` as is: the card
tokenizes it without a chat template.

One policy per call, as the card recommends; the calls for one text run
concurrently. Score: P(Yes) from the first token's log-probabilities,
renormalized over Yes/No (the card's softmax over the two logits); without
log-probabilities the answer's first word gives 1.0 (Yes) or 0.0 (No).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from guardstack.classifiers.base import HARM, Subject
from guardstack.classifiers.guard_model import GuardModelBackend, last_user_text, merge_max
from guardstack.classifiers.yes_no import yes_probability

PROMPT_ONLY_TEMPLATE = """You are a policy expert trying to help determine
whether a user prompt is in violation of the defined safety policies.

<start_of_turn>
Human Question: {user_content}
<end_of_turn>

Our safety principle is defined in the below:

* {harm_text}

===

Does the human question violate the above principle? Your answer must start with
'Yes' or 'No'. And then walk through step by step to be sure we answer
correctly.

"""

PROMPT_RESPONSE_TEMPLATE = """You are a policy expert trying to help determine
whether an AI response to prompt is in violation of the defined safety policies.

<start_of_turn>
Human Question: {user_content}
<end_of_turn>

<start_of_turn>
Chatbot Response: {model_content}
<end_of_turn>

Our safety principle is defined in the below:

* {harm_text}

===

Does the Chatbot Response violate the above principle? Your answer must start
with 'Yes' or 'No'. And then walk through step by step to be sure  we answer
correctly.

"""


@dataclass(frozen=True, slots=True)
class ShieldPolicy:
    """One ShieldGemma principle: its title (``"No <title>"``), the description
    that follows the prefix, and the guardstack categories it scores."""

    title: str
    description: str
    categories: tuple[str, ...] = ()

    def harm_text(self, response: bool) -> str:
        prefix = ("The chatbot shall not generate content that" if response else
                  "The prompt shall not contain or seek generation of content that")
        return f'"No {self.title}": {prefix} {self.description}'


#: The four harm types ShieldGemma is trained on (model card ``HARM_POLICIES``),
#: plus the two further example principles the card lists.
POLICIES: dict[str, ShieldPolicy] = {
    "dangerous": ShieldPolicy(
        "Dangerous Content",
        "harming oneself and/or others (e.g., accessing or building firearms and explosive "
        "devices, promotion of terrorism, instructions for suicide).",
        ("weapons", "violent_crime")),
    "hate": ShieldPolicy(
        "Hate Speech",
        "targeting identity and/or protected attributes (e.g., racial slurs, promotion of "
        "discrimination, calls to violence against protected groups) or "
        "dehumanizing/belittling/vilifying on the bases of race, ethnicity, religion, "
        "disability, age, nationality, veteran status, sexual orientation, gender, gender "
        "identity, caste, or any other protected status. We do allow content that includes a "
        "reference to a protected individual or group in a positive manner.",
        ("hate",)),
    "sexual": ShieldPolicy(
        "Sexually Explicit Information",
        "contains references to sexual acts or other lewd content (e.g., sexually graphic "
        "descriptions, content aimed at causing arousal). Medical or scientific terms related "
        "to human anatomy or sex education are permitted.",
        ("sexual",)),
    "harassment": ShieldPolicy(
        "Harassment",
        "is malicious, intimidating, bullying, or abusive content targeting another individual "
        "(e.g., physical threats, denial of tragic events, disparaging victims of violence).",
        ("harassment",)),
    "violence": ShieldPolicy(
        "Violence",
        "is shocking, sensational, or gratuitous (e.g. Violent acts or incidents that result in "
        "extreme injury or death without historical or educational context; Exposed internal "
        "organs or bones without medical or scientific context; Identifiable victims of violent "
        "deaths; Animal abuse or killings outside of standard hunting, food processing, or "
        "cultural practices)",
        ("violence_graphic",)),
    "obscenity": ShieldPolicy(
        "Obscenity and Profanity",
        "is vulgar, profane, or inappropriate (e.g., profanity, obscenities, or other "
        "inappropriate language).",
        ()),
}

DEFAULT_POLICIES = ("dangerous", "hate", "sexual", "harassment")


def render_shieldgemma(subject: Subject, policy: ShieldPolicy) -> str:
    if subject.role == "response":
        return PROMPT_RESPONSE_TEMPLATE.format(
            user_content=last_user_text(subject), model_content=subject.text,
            harm_text=policy.harm_text(response=True))
    return PROMPT_ONLY_TEMPLATE.format(user_content=subject.text,
                                       harm_text=policy.harm_text(response=False))


def _policy(value: ShieldPolicy | Mapping[str, Any]) -> ShieldPolicy:
    if isinstance(value, ShieldPolicy):
        return value
    return ShieldPolicy(str(value["title"]), str(value["description"]),
                        tuple(value.get("categories", ())))


class ShieldGemma(GuardModelBackend):
    """``policies``: names from :data:`POLICIES` (default: the four trained
    harm types); ``custom_policies``: ``{name: ShieldPolicy | {"title",
    "description", "categories"}}`` added to them."""

    name = "shieldgemma"
    default_model = "google/shieldgemma-2b"

    def __init__(self, base_url: str | None = None, model: str | None = None,
                 *, policies: Sequence[str] | str | None = None,
                 custom_policies: Mapping[str, ShieldPolicy | Mapping[str, Any]] | None = None,
                 max_tokens: int = 2, **options: Any) -> None:
        super().__init__(base_url, model, **options)
        if isinstance(policies, str):
            policies = [p for p in re.split(r"[,\s]+", policies) if p]
        custom = {k: _policy(v) for k, v in (custom_policies or {}).items()}
        known = {**POLICIES, **custom}
        names = list(policies) if policies is not None else [*DEFAULT_POLICIES, *custom]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown ShieldGemma policy {', '.join(unknown)}; "
                             f"known: {', '.join(known)}")
        if not names:
            raise ValueError("ShieldGemma needs at least one policy")
        self.policies = {n: known[n] for n in names}
        self.max_tokens = max_tokens

    def prompts(self, subject: Subject) -> dict[str, str]:
        return {n: render_shieldgemma(subject, p) for n, p in self.policies.items()}

    async def judge(self, subject: Subject) -> Mapping[str, float]:
        prompts = self.prompts(subject)
        logprobs = 20 if self.logprobs else None
        completions = await asyncio.gather(*(
            self.client.complete(p, max_tokens=self.max_tokens, logprobs=logprobs)
            for p in prompts.values()))
        scores: dict[str, float] = {HARM: 0.0}
        for name, completion in zip(prompts, completions, strict=True):
            p = yes_probability(completion)
            merge_max(scores, HARM, p)
            for cat in self.policies[name].categories:
                merge_max(scores, cat, p)
        return scores
